// model_config.h: the model configuration shared by both wings (`config.json` in a checkpoint).
//
// Field names follow Hugging Face / DeepSeek-V2 where one exists; Chronos-only fields sit
// beside them. Every field is written explicitly and every field is required on read, so a
// checkpoint never depends on a default that might change; the two exceptions are fields
// absent from checkpoints written before they existed: lookahead_target (those were all trained
// against the softmax: read as router_probs) and lookahead_input_layer (their heads all read
// block 0: read as 0). docs/format.md lists them.
//
//     chronos::ModelConfig c = chronos::config_load("ckpt/config.json");
//     std::string text = chronos::config_to_json(c).dump(2);
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "format/weight_type.h"

namespace chronos {

enum class AttentionKind : uint8_t { mla, swa, gqa };
const char* attention_kind_name(AttentionKind kind);

// RMSNorm of the GQA queries and keys before RoPE: none; per head over head_dim (Qwen3-MoE:
// q_norm.weight [hd], k_norm.weight [hd]); or over the whole projection (OLMoE: q_norm.weight
// [nh*hd], k_norm.weight [nkv*hd]).
enum class QkNorm : uint8_t { none, head, proj };
const char* qk_norm_name(QkNorm kind);

// How the router turns its logits into scores (DeepSeek-V3: sigmoid) and picks the top k:
// greedy over all experts; group_limited (DeepSeek-V2): only experts of the topk_group groups
// whose best score is highest; noaux_tc (DeepSeek-V3): groups ranked by the sum of their two best
// scores + e_score_correction_bias, experts chosen by score + bias, weighted by the score alone.
enum class ScoringFunc : uint8_t { softmax, sigmoid };
enum class TopkMethod : uint8_t { greedy, group_limited, noaux_tc };
const char* scoring_func_name(ScoringFunc f);
const char* topk_method_name(TopkMethod m);

// YaRN context extension of RoPE (DeepSeek-V2/V3 `rope_scaling` with type "yarn"); factor 1 = off.
struct RopeScaling {
    double factor = 1.0;
    int64_t original_max_position_embeddings = 0;
    double beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 0.0;
    bool on() const { return factor != 1.0; }
};

// What the lookahead head is trained to predict at t+k: the router's softmax distribution, or
// its top-k choice (1/k on each chosen expert). The second is what prefetching needs: the
// cross-entropy optimum is then each expert's chance of being chosen, whose top-k maximises
// the expected recall@top-k (docs/training.md).
enum class LookaheadTarget : uint8_t { router_probs, router_topk };
const char* lookahead_target_name(LookaheadTarget target);
// "router_probs" or "router_topk"; anything else fails with a message naming `what`.
LookaheadTarget lookahead_target_from_name(const std::string& name, const std::string& what);

struct ModelConfig {
    std::string model_type = "chronos";
    int64_t vocab_size = 0;
    int64_t hidden_size = 0;
    int64_t num_hidden_layers = 0;
    int64_t num_attention_heads = 0;
    int64_t num_key_value_heads = 0;   // GQA / sliding-window layers
    int64_t head_dim = 0;              // GQA / sliding-window layers
    int64_t kv_lora_rank = 0;          // MLA latent width r
    int64_t qk_nope_head_dim = 0;      // MLA
    int64_t qk_rope_head_dim = 0;      // MLA
    int64_t v_head_dim = 0;            // MLA
    int64_t n_routed_experts = 0;
    int64_t num_experts_per_tok = 0;
    int64_t n_shared_experts = 0;
    int64_t moe_intermediate_size = 0;
    bool norm_topk_prob = true;
    double rms_norm_eps = 1e-6;
    double rope_theta = 10000.0;
    int64_t max_position_embeddings = 0;
    int64_t sliding_window = 0;
    bool tie_word_embeddings = false;
    std::vector<AttentionKind> attention_pattern;  // one entry per layer
    // Features of published GQA families (docs/import.md); absent from a file = off.
    bool attention_bias = false;        // q/k/v projections carry a bias (Qwen2-MoE)
    QkNorm qk_norm = QkNorm::none;      // Qwen3-MoE: head, OLMoE: proj
    double clip_qkv = 0.0;              // > 0: q, k, v clamped to [-clip, clip] after the norm (OLMoE)
    bool shared_expert_gate = false;    // shared expert scaled by sigmoid(x . g), g [1, H] (Qwen2-MoE)
    int64_t shared_expert_intermediate_size = 0;  // shared expert width; 0: n_shared_experts * moe_intermediate_size
    std::string source_model_type;      // the family an imported checkpoint came from ("" if trained here)
    // DeepSeek-V2/V3 features (absent from a file = off).
    int64_t q_lora_rank = 0;            // MLA queries through a rank-q_lora_rank latent (0: one q_proj)
    RopeScaling rope_scaling;
    int64_t first_k_dense_replace = 0;  // layers l < this have a dense MLP instead of experts
    int64_t moe_layer_freq = 1;         // ... and so do layers with l % moe_layer_freq != 0
    int64_t intermediate_size = 0;      // width of the dense MLP layers
    ScoringFunc scoring_func = ScoringFunc::softmax;
    TopkMethod topk_method = TopkMethod::greedy;
    int64_t n_group = 1, topk_group = 1;  // expert groups (group_limited, noaux_tc)
    double routed_scaling_factor = 1.0;   // the routed experts' weights times this (after norm_topk_prob)
    // Chronos fields.
    int64_t lookahead_steps = 0;        // K: the lookahead head predicts t+1..t+K
    int64_t lookahead_hidden_size = 0;  // width of the lookahead head's hidden layer
    LookaheadTarget lookahead_target = LookaheadTarget::router_topk;  // configs built in code; a file without the field reads router_probs
    // The block whose output the head reads (0 .. L-1). With the last block, the head runs once
    // token t has passed every layer and also sees t's own routing; below it, t-1's.
    int64_t lookahead_input_layer = 0;
    WeightType expert_dtype = WeightType::f32;  // how `chronos pack` stores experts by default

    // Layers with routed experts; the others have a dense MLP. Everything indexed by (layer,
    // expert) pairs (packs, traces, the lookahead head, the intent classifier, the prefetcher)
    // counts MoE layers only: pair m * E + e is expert e of the m-th MoE layer.
    bool is_moe_layer(int64_t l) const { return l >= first_k_dense_replace && l % moe_layer_freq == 0; }
    int64_t n_moe_layers() const {
        int64_t n = 0;
        for (int64_t l = 0; l < num_hidden_layers; ++l) n += is_moe_layer(l) ? 1 : 0;
        return n;
    }
    // The MoE index of layer l (-1 for a dense layer), and the layer of MoE index m.
    int64_t moe_index(int64_t l) const {
        if (!is_moe_layer(l)) return -1;
        int64_t m = 0;
        for (int64_t i = 0; i < l; ++i) m += is_moe_layer(i) ? 1 : 0;
        return m;
    }
    int64_t moe_layer(int64_t m) const {
        for (int64_t l = 0; l < num_hidden_layers; ++l) {
            if (is_moe_layer(l) && m-- == 0) return l;
        }
        return -1;
    }
    // Width of the shared expert (0 without one).
    int64_t shared_intermediate() const {
        if (n_shared_experts == 0) return 0;
        return shared_expert_intermediate_size > 0 ? shared_expert_intermediate_size : n_shared_experts * moe_intermediate_size;
    }
};

// The Chronos loss mix: hyperparameters of training alone. config.json records them beside the
// architecture, so that a checkpoint says how it was trained and the next stage starts from
// them, but ModelConfig does not hold them: the runtime reads only what serving needs.
struct LossWeights {
    double lambda_balance = 0.0;
    double lambda_temporal = 0.0;
    double lambda_lookahead = 0.0;
    double lambda_router_kl = 0.0;
    double fallback_mask_prob = 0.0;  // share of chosen experts masked in training (soft-mode practice)
};

// Parses and validates; `what` names the source in error messages. The loss weights' fields
// are not read here.
ModelConfig config_from_json(const nlohmann::json& j, const std::string& what);
// Parses config.json text held in memory: invalid JSON and every invalid field throw
// chronos::Error naming `what` (the fuzz target fuzz/fuzz_config.cpp holds it to that).
ModelConfig config_parse(const std::string& text, const std::string& what);
// RoPE as both wings compute it: the inverse frequencies of a `dim`-wide rotation (theta^(-2i/d),
// blended towards theta^(-2i/d) / factor by YaRN's ramp when rope_scaling is on), the factor
// YaRN multiplies cos and sin by, and the factor it multiplies the softmax scale by.
std::vector<double> rope_inv_freq(const ModelConfig& c, int64_t dim);
double rope_cos_sin_scale(const ModelConfig& c);
double attention_scale_factor(const ModelConfig& c);

// Whether the lookahead head reads the last block, and with it token t's own routing (else
// t-1's): the one rule the libtorch model and the runtime must agree on.
bool lookahead_reads_own_routing(const ModelConfig& c);
ModelConfig config_load(const std::string& path);
// Every field of config.json: the architecture, then the loss weights.
nlohmann::ordered_json config_to_json(const ModelConfig& c, const LossWeights& w);
// Atomic write of config.json.
void config_save(const ModelConfig& c, const LossWeights& w, const std::string& path);
// Throws chronos::Error if fields disagree with each other (heads vs kv heads, top-k > experts...),
// a size is above its limit (model_config.cpp says why each limit is where it is) or a real
// number is not finite.
void config_validate(const ModelConfig& c, const std::string& what);

// The loss weights of config.json (every field required), validated: finite and >= 0, the
// masking share in [0, 1). lambda_router_kl is the router KL anchor's weight an alignment stage
// trained with (pretraining refuses a non-zero one: it has no starting model to anchor to).
LossWeights loss_weights_from_json(const nlohmann::json& j, const std::string& what);
LossWeights loss_weights_load(const std::string& config_path);
void loss_weights_validate(const LossWeights& w, const std::string& what);

}  // namespace chronos
