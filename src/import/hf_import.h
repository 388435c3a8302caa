// hf_import.h: `chronos import --hf DIR --out DIR`: a Hugging Face MoE checkpoint (Mixtral,
// Qwen2-MoE, Qwen3-MoE, OLMoE, DeepSeek-V2, DeepSeek-V3) becomes a Chronos checkpoint with
// packed experts.
//
// Each family's config.json fields are mapped onto ModelConfig or refused with a message naming
// the field (docs/import.md lists them); tensors are renamed to the Chronos names, checked
// against the shapes the config implies, and streamed one at a time into model.safetensors
// (f32 master weights), then packed (experts and dense matrices in the source's width unless
// told otherwise). Everything is written into a staging folder that replaces OUT only when
// complete: a failure leaves nothing behind.
//
//     chronos::ImportOptions o;
//     o.hf_dir = "Qwen3-30B-A3B";  o.out_dir = "runs/qwen3";
//     chronos::ImportReport r = chronos::hf_import(o);
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "format/model_config.h"
#include "format/weight_type.h"

namespace chronos {

// Context length an import sizes the runtime's KV caches for when the source allows more and
// the user does not say (--context).
constexpr int64_t kImportDefaultContext = 8192;

struct ImportOptions {
    std::string hf_dir;
    std::string out_dir;
    std::optional<WeightType> experts;  // pack type of the routed experts; default: the source's width
    std::optional<WeightType> dense;    // pack type of the dense matrices; default: the source's width
    int64_t context = 0;                // 0: the source's max_position_embeddings, at most kImportDefaultContext
};

struct ImportReport {
    std::string family;
    int64_t tensors = 0;
    uint64_t source_bytes = 0;   // the shards' sizes
    uint64_t written_bytes = 0;  // model.safetensors and the packs
    double seconds = 0;
    WeightType experts = WeightType::f32, dense = WeightType::f32;
    ModelConfig config;
};

ImportReport hf_import(const ImportOptions& o);

// The Chronos architecture of a Hugging Face config.json; `context` as in ImportOptions.
// Throws chronos::Error for an unknown model_type or a field whose value is not supported.
ModelConfig hf_config_map(const nlohmann::json& hf, int64_t context, const std::string& what);

// The source name of a Chronos tensor in a checkpoint of `family` (model_type).
std::string hf_source_name(const std::string& family, const std::string& chronos_name);

}  // namespace chronos
