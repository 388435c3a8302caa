// model.h: the runtime's view of a checkpoint directory — weights, not state (state lives in
// Session). Dense weights are pointers into a read-only mmap of model.safetensors, or, for the
// matrices a pack stored narrow (`chronos pack --dense-dtype`), of the pack's dense file; routed
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
#include "runtime/kernels.h"

namespace chronos::rt {

struct LayerWeights {
    AttentionKind kind = AttentionKind::mla;
    bool moe = true;                    // false: a dense MLP (shared_* hold it), no router or experts
    int64_t moe_index = 0;              // the layer's index among MoE layers (pairs are moe_index * E + e)
    const double* rope_inv = nullptr;   // [rope width / 2] inverse frequencies (Model::rope_inv_*)
    double rope_scale = 1.0;            // YaRN's cos/sin factor
    double softmax_scale = 0.0;         // 1/sqrt(query width), times YaRN's correction (MLA)
    const float* input_norm = nullptr;  // [H]
    const float* post_norm = nullptr;   // [H]
    // MLA
    Matrix q_proj;                      // [nh*(dn+dr), H] (without q_lora_rank)
    Matrix q_a;                         // [qr, H] (q_lora_rank qr > 0)
    const float* q_a_norm = nullptr;    // [qr]
    Matrix q_b;                         // [nh*(dn+dr), qr]
    Matrix kv_a;                        // [r+dr, H]
    const float* kv_a_norm = nullptr;   // [r]
    const float* kv_b = nullptr;        // [nh*(dn+dv), r] (always f32: read per head as slices)
    // GQA / sliding window
    Matrix wq;                          // [nh*hd, H]
    Matrix wk;                          // [nkv*hd, H]
    Matrix wv;                          // [nkv*hd, H]
    const float* bq = nullptr;          // [nh*hd]  (attention_bias; else null)
    const float* bk = nullptr;          // [nkv*hd]
    const float* bv = nullptr;          // [nkv*hd]
    const float* q_norm = nullptr;      // [hd] (qk_norm head) or [nh*hd] (proj); else null
    const float* k_norm = nullptr;      // [hd] or [nkv*hd]
    Matrix o_proj;                      // [H, nh*dv] (MLA) or [H, nh*hd]
    // MoE
    const float* gate = nullptr;        // [E, H] router (always f32)
    const float* gate_bias = nullptr;   // [E] e_score_correction_bias (noaux_tc), else null
    Matrix shared_gate;                 // [Fs, H] (empty without shared experts); a dense layer's MLP [I, H]
    Matrix shared_up;                   // [Fs, H]
    Matrix shared_down;                 // [H, Fs]
    const float* shared_expert_gate = nullptr;  // [H]: the shared expert scaled by sigmoid(g . x); else null
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
    Matrix embed;                    // [V, H]
    const float* final_norm = nullptr;
    Matrix lm_head;                  // [V, H] (the embedding when tied)
    std::vector<LayerWeights> layers;
    std::vector<double> rope_inv_mla, rope_inv_gqa;  // rope_inv_freq for the MLA rope width and head_dim
    LookaheadWeights lookahead;      // hidden == 0 when the model has no lookahead head
    IntentWeights intent;

    uint64_t expert_bytes_total() const;  // all routed experts in their stored dtype
    uint64_t dense_bytes = 0;             // the dense tensors the runtime reads (mmap'd), as stored
    WeightType dense_type() const { return manifest.dense.dtype; }
    // Reads one byte of every page of the dense tensors, so that they are resident before
    // memory is measured (the first forward would fault them in anyway).
    void dense_prefault() const;

private:
    std::unique_ptr<SafetensorsFile> weights_;
    std::unique_ptr<SafetensorsFile> dense_file_;  // the pack's narrow dense matrices, if any
    std::vector<std::pair<const uint8_t*, uint64_t>> dense_;  // the tensors behind dense_bytes
};

// Drops the pack files' pages from the page cache (posix_fadvise DONTNEED): a cold start for
// buffered reads. O_DIRECT reads bypass the cache anyway.
void model_drop_page_cache(const Model& model);

}  // namespace chronos::rt
