// estimate.h: what a model config costs before anything is trained or packed: parameters per
// group, bytes per stored type, KV-cache bytes per token per attention kind, expert slots at a
// RAM budget and the predicted peak RSS of the inference process running it. One function
// serves `chronos estimate` and the server's config page; the test holds it to `inspect` of an
// initialised checkpoint and to the peak RSS `chronos generate` measures on it.
//
//     chronos::rt::Estimate e = chronos::rt::estimate_config(config, {WeightType::q8, WeightType::f32, 64 << 20});
//     e.params_total; e.predicted_peak_rss_bytes;
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "format/model_config.h"
#include "format/weight_type.h"

namespace chronos::rt {

struct EstimateOptions {
    WeightType experts = WeightType::f32;  // the packs' expert type
    WeightType dense = WeightType::f32;    // the dense weights' type
    uint64_t ram_budget = 0;               // bytes for expert slots; 0: every expert resident
    uint64_t code_bytes = 0;               // RSS before any model (0: this process's RSS now)
};

struct Estimate {
    struct Group {
        std::string name;      // embeddings, attention (mla, gqa, swa), router, experts, shared_experts, norms, lm_head, lookahead
        int64_t params = 0;
        bool matrices = true;  // stored in the dense type (norms and biases stay f32)
    };
    std::vector<Group> groups;
    int64_t params_total = 0, params_experts = 0, params_dense = 0;
    std::vector<std::pair<std::string, uint64_t>> expert_bytes_by_type;  // every expert, per stored type
    std::vector<std::pair<std::string, uint64_t>> dense_bytes_by_type;
    std::vector<std::pair<std::string, uint64_t>> kv_bytes_per_token;    // per attention kind, summed over its layers
    uint64_t kv_bytes_context = 0;  // the KV caches at the full context (sliding windows capped)
    uint64_t expert_bytes = 0;      // one expert in the chosen type
    uint64_t experts_total_bytes = 0, dense_bytes = 0, session_bytes = 0, code_bytes = 0;
    int64_t slots = 0;              // expert slots the budget holds (at least one layer's top-k)
    uint64_t pool_bytes = 0;
    uint64_t predicted_peak_rss_bytes = 0;
};

Estimate estimate_config(const ModelConfig& c, const EstimateOptions& o);
nlohmann::ordered_json estimate_json(const Estimate& e);
std::string estimate_text(const Estimate& e);

}  // namespace chronos::rt
