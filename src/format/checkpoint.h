// checkpoint.h: the checkpoint directory shared by the train wing and the runtime.
//
//   DIR/config.json         ModelConfig (format/model_config.h), every field explicit
//   DIR/model.safetensors   fp32 master weights, names as checkpoint_tensor_specs() lists
//   DIR/tokenizer.model     SentencePiece model (tokenizer/tokenizer.h); an imported model: tokenizer.json
//   DIR/...                 later stages add files (optimizer state, intent classifier, packs)
//
// Writes go through CheckpointStaging: files are written into DIR.tmp-<pid>/ and the whole
// directory is swapped into place with one atomic rename(2)/renameat2(RENAME_EXCHANGE), so a
// crash mid-save leaves the previous checkpoint complete.
//
//     chronos::CheckpointStaging stage("runs/small");
//     chronos::config_save(cfg, stage.file("config.json"));
//     writer.write(stage.file("model.safetensors"));
//     stage.commit();
//     chronos::Checkpoint ck = chronos::checkpoint_open("runs/small");
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "format/model_config.h"
#include "format/safetensors.h"

namespace chronos {

struct TensorSpec {
    std::string name;
    std::vector<int64_t> shape;
};

// Every tensor model.safetensors must hold for `c`, in canonical order.
std::vector<TensorSpec> checkpoint_tensor_specs(const ModelConfig& c);
// Names of one routed expert's three matrices.
std::string expert_tensor_name(int64_t layer, int64_t expert, const char* proj);

// Throws chronos::Error listing missing, unexpected, mis-shaped or non-F32 tensors.
void checkpoint_validate_tensors(const ModelConfig& c, const SafetensorsHeader& header, const std::string& what);

struct Checkpoint {
    std::string dir;
    ModelConfig config;
    LossWeights losses;  // how it was trained (training reads them; the runtime does not)
    std::unique_ptr<SafetensorsFile> weights;
    std::string tokenizer_path;  // empty if the directory has none
};

// The tokenizer file of a checkpoint directory: tokenizer.json for an imported model (a
// non-empty source_model_type) that has one, else tokenizer.model (Chronos's SentencePiece, or an
// imported model's); "" when there is none.
std::string tokenizer_path_in(const std::string& dir, bool imported);

// Opens and validates a checkpoint directory (config, weights, tokenizer if present).
Checkpoint checkpoint_open(const std::string& dir);

// Whether a save may replace `dir`: it does not exist, is an empty directory, or is a Chronos
// checkpoint (a config.json of model_type "chronos"). Anything else (a folder of other files,
// a Hugging Face folder, a folder holding checkpoints) would be deleted by the swap.
bool checkpoint_replaceable(const std::string& dir);
// Fails, naming the option, unless `out` is replaceable and none of the command's inputs
// (option, path) is `out` or lies inside it: a command never writes over what it reads.
void checkpoint_out_check(const std::string& out, const std::vector<std::pair<std::string, std::string>>& inputs);

class CheckpointStaging {
public:
    explicit CheckpointStaging(std::string dir);
    ~CheckpointStaging();
    CheckpointStaging(const CheckpointStaging&) = delete;
    CheckpointStaging& operator=(const CheckpointStaging&) = delete;

    // Path of `name` inside the staging directory.
    std::string file(const std::string& name) const;
    // Copies the files (and directories) of an existing checkpoint that this save does not
    // rewrite; names absent there are skipped.
    void keep_from(const std::string& existing_dir, const std::vector<std::string>& names);
    void commit();

private:
    std::string dir_;
    std::string staging_;
    bool committed_ = false;
};

}  // namespace chronos
