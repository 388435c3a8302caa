// layers.h: the runtime's layers as plain functions — attention (MLA, GQA, sliding window),
// router, routed and shared experts — with explicit inputs, outputs and shapes. They hold no
// state of their own: KV caches and scratch are passed in (sized once by the session, so that
// decode allocates nothing), weights come from Model, and an expert's bytes from whoever holds
// them. Shapes: T rows in the batch, H hidden, E routed experts, k experts per token, F expert
// width, P context length.
//
//     chronos::rt::LayerCache cache = chronos::rt::layer_cache_init(c, w.kind);
//     chronos::rt::AttentionScratch as(c, /*tmax=*/P);
//     chronos::rt::attention_forward(out, x, w, c, cache, pos, T, as);      // x, out [T, H]
//     chronos::rt::router_forward(probs, topi, topw, x, w, c, T);           // [T, E], [T, k], [T, k]
#pragma once

#include <cstdint>
#include <vector>

#include "format/model_config.h"
#include "runtime/model.h"

namespace chronos::rt {

// One layer's KV cache. MLA: the normalised latent a [P, r] and the rotated rope key b [P, dr].
// GQA: keys a and values b [rows, nkv*hd], rows = P, or the window for sliding-window layers,
// whose cache is a ring with the position each row holds (ring_pos [rows], -1 for none).
struct LayerCache {
    std::vector<float> a, b;
    std::vector<int64_t> ring_pos;
};
LayerCache layer_cache_init(const ModelConfig& c, AttentionKind kind);
// Forgets every position (the caches' contents are overwritten before they are read again).
void layer_cache_reset(LayerCache& cache);

// Scratch for attention_forward, for batches of up to tmax rows and any thread count.
struct AttentionScratch {
    AttentionScratch(const ModelConfig& c, int64_t tmax);
    std::vector<float> q, qa, kv, k, v, heads;
    std::vector<float> per_thread;  // threads x per_thread_len: a head's scores and latents
    int64_t per_thread_len = 0;
    std::vector<LayerCache*> row_cache;  // [tmax] each row's cache
    std::vector<int64_t> row_pos;        // [tmax] each row's position
};

// x [T, H] (normalised) -> out [T, H] for the rows at positions pos .. pos+T-1, each attending
// to the cache up to itself; appends their keys and values to the cache first.
void attention_forward(float* out, const float* x, const LayerWeights& w, const ModelConfig& c, LayerCache& cache,
                       int64_t pos, int64_t T, AttentionScratch& s);
// Batched decode: row b of x [B, H] is one token of its own sequence, at position pos[b] with
// cache caches[b] -> out [B, H]. The projections read each weight matrix once for all rows, and
// every row is bit-identical to attention_forward of that row alone (T = 1).
void attention_forward_rows(float* out, const float* x, const LayerWeights& w, const ModelConfig& c, LayerCache* const* caches,
                            const int64_t* pos, int64_t B, AttentionScratch& s);

// x [T, H] (normalised) -> probs [T, E] (scores: softmax over all experts, or a sigmoid each),
// topi [T, k] (the k experts the config's topk_method picks: the k best, or the best within the
// best groups), topw [T, k] (their scores, renormalised to sum 1 when norm_topk_prob, times
// routed_scaling_factor). choice: scratch of router_choice_len(c) floats. rowwise as for
// expert_forward.
int64_t router_choice_len(const ModelConfig& c);
void router_forward(float* probs, int32_t* topi, float* topw, const float* x, const LayerWeights& w,
                    const ModelConfig& c, int64_t T, float* choice, bool rowwise = false);

// The T*k assignments of a routing grouped by expert (a counting sort): expert e's rows are
// rows[start[e] .. start[e+1]) with weights rows_w, in row order.
struct MoeGroups {
    MoeGroups(int64_t E, int64_t tmax, int64_t k);
    std::vector<int32_t> count, start, rows, fill;  // [E], [E+1], [T*k], [E]
    std::vector<float> rows_w;                       // [T*k]
};
void moe_group(MoeGroups& g, const int32_t* topi, const float* topw, int64_t T, int64_t k, int64_t E);

// Scratch for expert_forward: gathered rows, gate and up activations.
struct ExpertScratch {
    ExpertScratch(const ModelConfig& c, int64_t tmax);
    std::vector<float> xs, g, u;
};

// rows [n] of x [*, H] through one expert, weights = gate [F, H] | up [F, H] | down [H, F]
// stored as `type` (pack_expert_bytes) -> out [n, H] (unweighted): down(silu(gate x) * up x).
// The products read the stored type directly (kernels.h); with rowwise each row is exactly what
// it would be alone (batched decode), otherwise the n rows form one GEMM (prefill).
void expert_forward(float* out, const float* x, const int32_t* rows, int64_t n, const uint8_t* weights, WeightType type,
                    int64_t H, int64_t F, ExpertScratch& s, bool rowwise = false);

// The routed experts' sum: out [T, H] += w * y for every assignment whose expert is available
// (avail [E] is 1), y [T*k, H] holding each assignment's expert output at its grouped index.
// Summed in expert order whatever order the experts computed in, so that a run that waited for
// reads is bit-identical to a resident one.
void moe_combine(float* out, const float* y, const MoeGroups& g, const float* avail, int64_t E, int64_t H);

// The shared expert, always resident: out [T, H] += down(silu(gate x) * up x), x [T, H], each
// row scaled by sigmoid(shared_expert_gate . x) when the model has that gate;
// sg, su [T, Fs] scratch. rowwise as for expert_forward.
void shared_expert_forward(float* out, const float* x, const LayerWeights& w, int64_t T, int64_t H, int64_t Fs,
                           float* sg, float* su, bool rowwise = false);

// The lookahead head: h [H] (block lookahead_input_layer's output, normalised here) and a full
// routing route [L*E] -> out [K, L, E], a distribution over experts per (step ahead, layer).
// in [H + L*E] and hid [D] are scratch.
void lookahead_forward(float* out, const float* h, const float* route, const LookaheadWeights& w, const ModelConfig& c,
                       float* in, float* hid);

// The intent classifier on a prompt ids [T]: features [mean embedding | mean of the last
// tail_tokens embeddings] [2H] -> SiLU MLP -> score [L*E], a sigmoid per (layer, expert) pair.
// Allocates its features (once per prompt).
void intent_forward(float* score, const int32_t* ids, int64_t T, const Model& model);

}  // namespace chronos::rt
