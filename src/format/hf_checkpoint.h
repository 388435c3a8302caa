// hf_checkpoint.h: a Hugging Face checkpoint folder, read tensor by tensor.
//
//   DIR/config.json                          the model's configuration (family-specific fields)
//   DIR/model.safetensors                    one file, or
//   DIR/model.safetensors.index.json         {"weight_map": {tensor name: shard file name}}
//   DIR/model-00001-of-0000N.safetensors     ... the shards it names
//   DIR/tokenizer.json, tokenizer.model, tokenizer_config.json, generation_config.json
//
// Only the shards' headers are read when the folder is opened; a tensor's bytes are read with
// pread into a buffer the caller owns, converted to f32, so that importing a model never maps
// or holds more than one tensor of it. Every fault (a missing shard, an index naming a tensor its
// shard lacks, a tensor in two shards, a truncated file) throws chronos::Error naming the file.
//
//     chronos::HfCheckpoint hf = chronos::hf_open("Qwen3-30B-A3B");
//     const chronos::TensorInfo& t = hf.info("model.norm.weight");
//     std::vector<float> w;
//     hf.read_f32("model.norm.weight", w);
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "format/safetensors.h"

namespace chronos {

class HfCheckpoint {
public:
    std::string dir;
    nlohmann::json config;  // config.json as written

    bool has(const std::string& name) const { return where_.count(name) != 0; }
    // Throws chronos::Error if the checkpoint has no such tensor.
    const TensorInfo& info(const std::string& name) const;
    // Every tensor name, sorted.
    std::vector<std::string> names() const;
    // The tensor's elements as f32 (F32, BF16 and F16 sources; others refused), resized to fit.
    void read_f32(const std::string& name, std::vector<float>& out) const;
    // The widest source dtype among the matrices (F32 if any is F32, else BF16 or F16); vectors
    // (norms, biases) do not count, as checkpoints often keep them in F32 beside bf16 matrices.
    DType source_dtype() const;
    // Total bytes of every shard file.
    uint64_t total_bytes() const;
    // Frees read_f32's buffer (it holds the largest narrow tensor read so far).
    void free_buffer() { std::vector<uint8_t>().swap(raw_); }

    struct Shard {
        std::string path;
        uint64_t file_size = 0;
        SafetensorsHeader header;
    };
    std::vector<Shard> shards;

private:
    friend HfCheckpoint hf_open(const std::string& dir);
    std::map<std::string, std::pair<size_t, size_t>> where_;  // name -> (shard, tensor index)
    mutable std::vector<uint8_t> raw_;                         // read buffer of read_f32
};

// Opens DIR: config.json, then the index and its shards or model.safetensors.
HfCheckpoint hf_open(const std::string& dir);

}  // namespace chronos
