// model.h: the runtime's view of a checkpoint directory — weights, not state (state lives in
// Session). Dense weights are pointers into a read-only mmap of model.safetensors; routed
// experts are reached only through cluster_manifest.json and the packs (ExpertStore), never
// through model.safetensors. Links no libtorch.
//
//     chronos::rt::Model model("runs/small");          // config, dense weights, manifest, intent
//     model.config.hidden_size;  model.layers[0].gate;  // [E, H] router
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "format/intent.h"
#include "format/model_config.h"
#include "format/pack.h"
#include "format/safetensors.h"

namespace chronos::rt {

struct LayerWeights {
    AttentionKind kind = AttentionKind::mla;
    const float* input_norm = nullptr;  // [H]
    const float* post_norm = nullptr;   // [H]
    // MLA
    const float* q_proj = nullptr;      // [nh*(dn+dr), H]
    const float* kv_a = nullptr;        // [r+dr, H]
    const float* kv_a_norm = nullptr;   // [r]
    const float* kv_b = nullptr;        // [nh*(dn+dv), r]
    // GQA / sliding window
    const float* wq = nullptr;          // [nh*hd, H]
    const float* wk = nullptr;          // [nkv*hd, H]
    const float* wv = nullptr;          // [nkv*hd, H]
    const float* o_proj = nullptr;      // [H, nh*dv] (MLA) or [H, nh*hd]
    // MoE
    const float* gate = nullptr;        // [E, H]
    const float* shared_gate = nullptr; // [Fs, H] (null without shared experts)
    const float* shared_up = nullptr;   // [Fs, H]
    const float* shared_down = nullptr; // [H, Fs]
};

struct LookaheadWeights {
    const float* norm = nullptr;   // [H]
    const float* up = nullptr;     // [D, H + L*E]
    const float* out = nullptr;    // [K*L*E, D]
    int64_t hidden = 0;            // D
};

// The intent classifier (format/intent.h), present = false until `chronos train intent`.
using IntentWeights = IntentClassifier;

class Model {
public:
    explicit Model(const std::string& dir);

    std::string dir;
    ModelConfig config;
    PackManifest manifest;
    std::string tokenizer_path;  // empty if the directory has none
    const float* embed = nullptr;    // [V, H]
    const float* final_norm = nullptr;
    const float* lm_head = nullptr;  // [V, H] (the embedding when tied)
    std::vector<LayerWeights> layers;
    LookaheadWeights lookahead;      // hidden == 0 when the model has no lookahead head
    IntentWeights intent;

    uint64_t expert_bytes_total() const;  // all routed experts in their stored dtype
    uint64_t dense_bytes = 0;             // the dense tensors the runtime reads (mmap'd)
    // Reads one byte of every page of the dense tensors, so that they are resident before
    // memory is measured (the first forward would fault them in anyway).
    void dense_prefault() const;

private:
    std::unique_ptr<SafetensorsFile> weights_;
    std::vector<std::pair<const uint8_t*, uint64_t>> dense_;  // the tensors behind dense_bytes
};

// Drops the pack files' pages from the page cache (posix_fadvise DONTNEED): a cold start for
// buffered reads. O_DIRECT reads bypass the cache anyway.
void model_drop_page_cache(const Model& model);

}  // namespace chronos::rt
