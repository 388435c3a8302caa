// model.h: the Chronos MoE transformer in libtorch (train wing).
//
// Module and parameter names equal the checkpoint tensor names of docs/format.md, so that
// named_parameters() is the checkpoint. Shapes: B batch, T tokens, H hidden, E routed experts,
// k experts per token, L layers, K lookahead steps, V vocabulary.
//
//     chronos::ChronosModel model(config);
//     chronos::ForwardOutput out = model->forward(ids);          // ids [B, T] int64
//     out.logits;                                                 // [B, T, V]
//     out.router_probs[l];                                        // [B, T, E]
#pragma once

#include <torch/torch.h>

#include <vector>

#include "format/model_config.h"

namespace chronos {

// y = x / sqrt(mean(x^2) + eps) * weight, computed in at least fp32. x [..., D], weight [D].
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// RoPE, Llama/NeoX convention: frequencies theta^(-2i/d), rotate the two halves.
// positions [T] int64 -> cos, sin [T, d]: angles in float64, the table rounded to `dtype`
// (float32 as the runtime rounds it; float64 for a float64 model).
struct RopeTable {
    torch::Tensor cos, sin;
};
RopeTable rope_table(int64_t dim, double theta, const torch::Tensor& positions, torch::ScalarType dtype = torch::kFloat32);
// The same for given inverse frequencies [d/2] (rope_inv_freq: YaRN included) with cos and sin
// multiplied by `scale` (rope_cos_sin_scale).
RopeTable rope_table(const std::vector<double>& inv_freq, double scale, const torch::Tensor& positions,
                     torch::ScalarType dtype = torch::kFloat32);
// x [..., T, d] -> same shape.
torch::Tensor rope_apply(const torch::Tensor& x, const RopeTable& rope);

// Decode cache of one attention layer. Entries are kept in position order.
struct LayerCache {
    torch::Tensor k, v;          // GQA/SWA: [B, n_kv, S, head_dim], k already rotated
    torch::Tensor c_kv, k_rope;  // MLA: [B, S, r] (normalised latent), [B, S, d_rope] (rotated)
    torch::Tensor positions;     // [S] int64 absolute positions
};

struct RMSNormImpl : torch::nn::Module {
    RMSNormImpl(int64_t dim, double eps);
    torch::Tensor forward(const torch::Tensor& x) { return rms_norm(x, weight, eps); }
    torch::Tensor weight;
    double eps;
};
TORCH_MODULE(RMSNorm);

// Multi-head latent attention (DeepSeek-V2): KV through a low-rank latent, a decoupled RoPE key
// computed from x and shared by all heads.
struct MlaAttentionImpl : torch::nn::Module {
    explicit MlaAttentionImpl(const ModelConfig& c);
    // x [B, T, H], positions [T] -> [B, T, H]. With a cache, new entries are appended and the
    // queries attend over the whole cache.
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& positions, LayerCache* cache);
    int64_t nh, d_nope, d_rope, d_v, rank;
    std::vector<double> inv_freq;  // [d_rope / 2]
    double rope_scale, softmax_scale;
    torch::nn::Linear q_proj{nullptr}, kv_a_proj_with_mqa{nullptr}, kv_b_proj{nullptr}, o_proj{nullptr};
    torch::nn::Linear q_a_proj{nullptr}, q_b_proj{nullptr};  // q_lora_rank > 0: q = q_b(norm(q_a(x))) instead of q_proj
    RMSNorm kv_a_layernorm{nullptr}, q_a_layernorm{nullptr};
};
TORCH_MODULE(MlaAttention);

// Grouped-query attention; window > 0 makes it sliding-window (i - window < j <= i). Options of
// the imported families: q/k/v bias, RMSNorm of q and k per head or over the projection, and
// clipping of q, k, v (after the norm, before RoPE).
struct GqaAttentionImpl : torch::nn::Module {
    GqaAttentionImpl(const ModelConfig& c, int64_t window);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& positions, LayerCache* cache);
    int64_t nh, n_kv, head_dim, window;
    std::vector<double> inv_freq;  // [head_dim / 2]
    double rope_scale;
    QkNorm qk_norm;
    double clip_qkv;
    torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
    RMSNorm q_norm{nullptr}, k_norm{nullptr};
};
TORCH_MODULE(GqaAttention);

// SwiGLU feed-forward: down(silu(gate(x)) * up(x)).
struct ExpertImpl : torch::nn::Module {
    ExpertImpl(int64_t hidden, int64_t inner);
    torch::Tensor forward(const torch::Tensor& x);  // [N, H] -> [N, H]
    torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Expert);

struct MoeOutput {
    torch::Tensor y;      // [N, H]
    torch::Tensor probs;  // [N, E] router scores (softmax, or sigmoid for DeepSeek-V3), at least fp32
    torch::Tensor topk;   // [N, k] int64 chosen experts
};

// Softmax router, top-k (renormalised), routed SwiGLU experts plus always-on shared experts
// (scaled by sigmoid(shared_expert_gate(x)) when the config has that gate).
struct MoeLayerImpl : torch::nn::Module {
    explicit MoeLayerImpl(const ModelConfig& c);
    // x [N, H]; availability [N, E] or [E] of 0/1 (undefined = all available); keep [N, k] of
    // 0/1 drops chosen slots (training's fallback masking; undefined = keep all).
    // y = shared(x) + sum_i w_i * a_i * E_i(x). Tokens are grouped by expert: one gather, one
    // matmul per expert on a contiguous block, one scatter-add; a single host sync per layer.
    MoeOutput forward(const torch::Tensor& x, const torch::Tensor& availability, const torch::Tensor& keep = {});
    int64_t n_experts, top_k;
    bool norm_topk;
    ScoringFunc scoring;
    TopkMethod method;
    int64_t n_group, topk_group;
    double scaling;
    torch::nn::Linear gate{nullptr};
    torch::Tensor e_score_correction_bias;  // [E] (noaux_tc), registered under gate; not trained by gradient
    torch::nn::ModuleList experts{nullptr};
    Expert shared_experts{nullptr};
    torch::nn::Linear shared_expert_gate{nullptr};  // [1, H]
};
TORCH_MODULE(MoeLayer);

struct DecoderLayerImpl : torch::nn::Module {
    DecoderLayerImpl(const ModelConfig& c, int64_t layer);
    AttentionKind kind;
    RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
    MlaAttention mla{nullptr};
    GqaAttention gqa{nullptr};
    MoeLayer mlp{nullptr};
    Expert dense{nullptr};  // a dense layer's MLP (config.is_moe_layer false), named "mlp" too
};
TORCH_MODULE(DecoderLayer);

struct DecoderImpl : torch::nn::Module {
    explicit DecoderImpl(const ModelConfig& c);
    torch::nn::Embedding embed_tokens{nullptr};
    torch::nn::ModuleList layers{nullptr};
    RMSNorm norm{nullptr};
};
TORCH_MODULE(Decoder);

// Predicts the router distribution of every layer at t+1..t+K from what the runtime knows
// once block j = lookahead_input_layer of token t has run: the hidden state after block j at
// t, and the full routing (all layers) of the latest token that has one: t-1, or t itself when
// j is the last block. norm(h) ++ route -> up_proj -> SiLU -> out_proj -> [K, L, E].
struct LookaheadHeadImpl : torch::nn::Module {
    explicit LookaheadHeadImpl(const ModelConfig& c);
    // h [B, T, H], route [B, T, L*E] -> logits [B, T, K, L, E]
    torch::Tensor forward(const torch::Tensor& h, const torch::Tensor& route);
    int64_t K, L, E;
    RMSNorm norm{nullptr};
    torch::nn::Linear up_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(LookaheadHead);

struct ForwardOptions {
    torch::Tensor positions;            // [T] int64; default: continue after the cache, else 0..T-1
    std::vector<LayerCache>* cache = nullptr;  // one per layer, for step-by-step decoding
    torch::Tensor availability;         // [Lm, E] 0/1 per (MoE layer, expert); undefined = all
    // [Lm, B, T, k] 0/1 (Lm: MoE layers): training's fallback masking of chosen experts (fallback_mask_prob). The
    // trainer draws it, so the model itself is deterministic and data-parallel shards can take
    // their rows of one global draw.
    torch::Tensor keep;
    // [B, L*E] router probabilities of the token before ids[:, 0] (all layers), for the
    // lookahead head when decoding step by step; undefined = zeros (start of a sequence).
    torch::Tensor prev_route;
};

struct ForwardOutput {
    torch::Tensor logits;                     // [B, T, V]
    std::vector<torch::Tensor> router_probs;  // Lm x [B, T, E], one per MoE layer
    std::vector<torch::Tensor> router_topk;   // Lm x [B, T, k]
    torch::Tensor lookahead_logits;           // [B, T, K, L, E], undefined if K == 0
};

struct ChronosModelImpl : torch::nn::Module {
    explicit ChronosModelImpl(const ModelConfig& c, const LossWeights& losses = {});
    ForwardOutput forward(const torch::Tensor& ids, const ForwardOptions& options = {});
    // Normal(0, 0.02) for matrices, ones for norms; deterministic given torch::manual_seed.
    void init_weights();

    ModelConfig config;
    LossWeights losses;  // the objective's weights, saved with the checkpoint
    Decoder model{nullptr};
    torch::nn::Linear lm_head{nullptr};
    LookaheadHead lookahead{nullptr};
};
TORCH_MODULE(ChronosModel);

}  // namespace chronos
