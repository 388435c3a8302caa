// model_config.cpp: strict JSON <-> ModelConfig conversion.
#include "format/model_config.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/file_io.h"

namespace chronos {

using nlohmann::json;

const char* attention_kind_name(AttentionKind kind) {
    switch (kind) {
        case AttentionKind::mla: return "mla";
        case AttentionKind::swa: return "swa";
        case AttentionKind::gqa: return "gqa";
    }
    return "?";
}

const char* qk_norm_name(QkNorm kind) {
    switch (kind) {
        case QkNorm::none: return "none";
        case QkNorm::head: return "head";
        case QkNorm::proj: return "proj";
    }
    return "?";
}

const char* scoring_func_name(ScoringFunc f) { return f == ScoringFunc::softmax ? "softmax" : "sigmoid"; }

const char* topk_method_name(TopkMethod m) {
    switch (m) {
        case TopkMethod::greedy: return "greedy";
        case TopkMethod::group_limited: return "group_limited_greedy";
        case TopkMethod::noaux_tc: return "noaux_tc";
    }
    return "?";
}

namespace {

// DeepSeek's yarn_get_mscale.
double yarn_mscale(double scale, double mscale) { return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

// DeepSeek's yarn_find_correction_dim: the dimension whose wavelength fits num_rotations times
// into the original context.
double yarn_correction_dim(double rotations, int64_t dim, double base, double max_pos) {
    return (static_cast<double>(dim) * std::log(max_pos / (rotations * 2.0 * M_PI))) / (2.0 * std::log(base));
}

}  // namespace

std::vector<double> rope_inv_freq(const ModelConfig& c, int64_t dim) {
    const int64_t half = dim / 2;
    std::vector<double> inv(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) inv[static_cast<size_t>(i)] = std::pow(c.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(dim));
    if (!c.rope_scaling.on()) return inv;
    const RopeScaling& y = c.rope_scaling;
    const double omax = static_cast<double>(y.original_max_position_embeddings);
    double low = std::max(std::floor(yarn_correction_dim(y.beta_fast, dim, c.rope_theta, omax)), 0.0);
    double high = std::min(std::ceil(yarn_correction_dim(y.beta_slow, dim, c.rope_theta, omax)), static_cast<double>(dim - 1));
    if (low == high) high += 0.001;
    for (int64_t i = 0; i < half; ++i) {
        const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
        const double extra = 1.0 - ramp;  // the share kept at the original frequency
        double& f = inv[static_cast<size_t>(i)];
        f = f / y.factor * (1.0 - extra) + f * extra;
    }
    return inv;
}

double rope_cos_sin_scale(const ModelConfig& c) {
    if (!c.rope_scaling.on()) return 1.0;
    return yarn_mscale(c.rope_scaling.factor, c.rope_scaling.mscale) / yarn_mscale(c.rope_scaling.factor, c.rope_scaling.mscale_all_dim);
}

double attention_scale_factor(const ModelConfig& c) {
    if (!c.rope_scaling.on() || c.rope_scaling.mscale_all_dim == 0.0) return 1.0;
    const double m = yarn_mscale(c.rope_scaling.factor, c.rope_scaling.mscale_all_dim);
    return m * m;
}

const char* lookahead_target_name(LookaheadTarget target) {
    switch (target) {
        case LookaheadTarget::router_probs: return "router_probs";
        case LookaheadTarget::router_topk: return "router_topk";
    }
    return "?";
}

namespace {

// One line of JSON for a value read from an input, for error messages: escaped and ASCII (a
// newline inside a string cannot split the one error line) and cut at 60 characters.
std::string brief(const json& v) {
    std::string s = v.dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace);
    return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

}  // namespace

LookaheadTarget lookahead_target_from_name(const std::string& name, const std::string& what) {
    if (name == "router_probs") return LookaheadTarget::router_probs;
    if (name == "router_topk") return LookaheadTarget::router_topk;
    fail("{}: lookahead_target {} is not router_probs or router_topk", what, brief(json(name)));
}

namespace {

const json& require(const json& j, const char* key, const std::string& what) {
    if (!j.contains(key)) fail("{}: missing field \"{}\"", what, key);
    return j.at(key);
}

int64_t get_int(const json& j, const char* key, const std::string& what) {
    const json& v = require(j, key, what);
    if (!v.is_number_integer()) fail("{}: field \"{}\" must be an integer", what, key);
    // JSON keeps integers above INT64_MAX as unsigned; get<int64_t> would wrap them negative.
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        fail("{}: field \"{}\" is too large ({})", what, key, v.get<uint64_t>());
    }
    return v.get<int64_t>();
}

double get_double(const json& j, const char* key, const std::string& what) {
    const json& v = require(j, key, what);
    if (!v.is_number()) fail("{}: field \"{}\" must be a number", what, key);
    return v.get<double>();
}

bool get_bool(const json& j, const char* key, const std::string& what) {
    const json& v = require(j, key, what);
    if (!v.is_boolean()) fail("{}: field \"{}\" must be true or false", what, key);
    return v.get<bool>();
}

std::string get_string(const json& j, const char* key, const std::string& what) {
    const json& v = require(j, key, what);
    if (!v.is_string()) fail("{}: field \"{}\" must be a string", what, key);
    return v.get<std::string>();
}

}  // namespace

ModelConfig config_from_json(const json& j, const std::string& what) {
    if (!j.is_object()) fail("{}: config is not a JSON object", what);
    ModelConfig c;
    c.model_type = get_string(j, "model_type", what);
    if (c.model_type != "chronos") fail("{}: model_type is {}, expected \"chronos\"", what, brief(json(c.model_type)));
    c.vocab_size = get_int(j, "vocab_size", what);
    c.hidden_size = get_int(j, "hidden_size", what);
    c.num_hidden_layers = get_int(j, "num_hidden_layers", what);
    c.num_attention_heads = get_int(j, "num_attention_heads", what);
    c.num_key_value_heads = get_int(j, "num_key_value_heads", what);
    c.head_dim = get_int(j, "head_dim", what);
    c.kv_lora_rank = get_int(j, "kv_lora_rank", what);
    c.qk_nope_head_dim = get_int(j, "qk_nope_head_dim", what);
    c.qk_rope_head_dim = get_int(j, "qk_rope_head_dim", what);
    c.v_head_dim = get_int(j, "v_head_dim", what);
    c.n_routed_experts = get_int(j, "n_routed_experts", what);
    c.num_experts_per_tok = get_int(j, "num_experts_per_tok", what);
    c.n_shared_experts = get_int(j, "n_shared_experts", what);
    c.moe_intermediate_size = get_int(j, "moe_intermediate_size", what);
    c.norm_topk_prob = get_bool(j, "norm_topk_prob", what);
    c.rms_norm_eps = get_double(j, "rms_norm_eps", what);
    c.rope_theta = get_double(j, "rope_theta", what);
    c.max_position_embeddings = get_int(j, "max_position_embeddings", what);
    c.sliding_window = get_int(j, "sliding_window", what);
    c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", what);
    const json& pattern = require(j, "attention_pattern", what);
    if (!pattern.is_array()) fail("{}: attention_pattern must be a list", what);
    for (const json& p : pattern) {
        std::string s = p.is_string() ? p.get<std::string>() : "";
        if (s == "mla") c.attention_pattern.push_back(AttentionKind::mla);
        else if (s == "swa") c.attention_pattern.push_back(AttentionKind::swa);
        else if (s == "gqa") c.attention_pattern.push_back(AttentionKind::gqa);
        else fail("{}: attention_pattern entry {} is not \"mla\", \"swa\" or \"gqa\"", what, brief(p));
    }
    // Fields of the imported families: checkpoints written before them have none of them on.
    if (j.contains("attention_bias")) c.attention_bias = get_bool(j, "attention_bias", what);
    if (j.contains("qk_norm")) {
        const std::string q = get_string(j, "qk_norm", what);
        if (q == "none") c.qk_norm = QkNorm::none;
        else if (q == "head") c.qk_norm = QkNorm::head;
        else if (q == "proj") c.qk_norm = QkNorm::proj;
        else fail("{}: qk_norm {} is not \"none\", \"head\" or \"proj\"", what, brief(json(q)));
    }
    if (j.contains("clip_qkv")) c.clip_qkv = get_double(j, "clip_qkv", what);
    if (j.contains("shared_expert_gate")) c.shared_expert_gate = get_bool(j, "shared_expert_gate", what);
    if (j.contains("shared_expert_intermediate_size")) {
        c.shared_expert_intermediate_size = get_int(j, "shared_expert_intermediate_size", what);
    }
    if (j.contains("source_model_type")) c.source_model_type = get_string(j, "source_model_type", what);
    if (j.contains("q_lora_rank")) c.q_lora_rank = get_int(j, "q_lora_rank", what);
    if (j.contains("rope_scaling")) {
        const json& r = j.at("rope_scaling");
        if (!r.is_object()) fail("{}: rope_scaling must be an object", what);
        const std::string w = what + ": rope_scaling";
        c.rope_scaling.factor = get_double(r, "factor", w);
        c.rope_scaling.original_max_position_embeddings = get_int(r, "original_max_position_embeddings", w);
        c.rope_scaling.beta_fast = get_double(r, "beta_fast", w);
        c.rope_scaling.beta_slow = get_double(r, "beta_slow", w);
        c.rope_scaling.mscale = get_double(r, "mscale", w);
        c.rope_scaling.mscale_all_dim = get_double(r, "mscale_all_dim", w);
    }
    if (j.contains("first_k_dense_replace")) c.first_k_dense_replace = get_int(j, "first_k_dense_replace", what);
    if (j.contains("moe_layer_freq")) c.moe_layer_freq = get_int(j, "moe_layer_freq", what);
    if (j.contains("intermediate_size")) c.intermediate_size = get_int(j, "intermediate_size", what);
    if (j.contains("scoring_func")) {
        const std::string f = get_string(j, "scoring_func", what);
        if (f == "softmax") c.scoring_func = ScoringFunc::softmax;
        else if (f == "sigmoid") c.scoring_func = ScoringFunc::sigmoid;
        else fail("{}: scoring_func {} is not \"softmax\" or \"sigmoid\"", what, brief(json(f)));
    }
    if (j.contains("topk_method")) {
        const std::string m = get_string(j, "topk_method", what);
        if (m == "greedy") c.topk_method = TopkMethod::greedy;
        else if (m == "group_limited_greedy") c.topk_method = TopkMethod::group_limited;
        else if (m == "noaux_tc") c.topk_method = TopkMethod::noaux_tc;
        else fail("{}: topk_method {} is not \"greedy\", \"group_limited_greedy\" or \"noaux_tc\"", what, brief(json(m)));
    }
    if (j.contains("n_group")) c.n_group = get_int(j, "n_group", what);
    if (j.contains("topk_group")) c.topk_group = get_int(j, "topk_group", what);
    if (j.contains("routed_scaling_factor")) c.routed_scaling_factor = get_double(j, "routed_scaling_factor", what);
    c.lookahead_steps = get_int(j, "lookahead_steps", what);
    c.lookahead_hidden_size = get_int(j, "lookahead_hidden_size", what);
    // The one field that may be absent: checkpoints written before it existed were all trained
    // against the softmax, so reading them as router_probs states a fact, not a default.
    c.lookahead_target = j.contains("lookahead_target")
                             ? lookahead_target_from_name(get_string(j, "lookahead_target", what), what)
                             : LookaheadTarget::router_probs;
    c.lookahead_input_layer = j.contains("lookahead_input_layer") ? get_int(j, "lookahead_input_layer", what) : 0;
    const std::string dt = get_string(j, "expert_dtype", what);
    std::optional<WeightType> et = weight_type_parse(dt);
    if (!et) fail("{}: expert_dtype {} is not f32, bf16, f16, q8 or q4", what, brief(json(dt)));
    c.expert_dtype = *et;
    config_validate(c, what);
    return c;
}

// Upper bounds of the size fields. Each is far (8x or more) above the largest published MoE
// model (DeepSeek-V3: vocab 129280, hidden 7168, 61 layers, 128 heads, kv_lora_rank 512,
// 256 experts top-8, moe_intermediate 2048, context 163840; Qwen3-235B: 94 layers, 128
// experts; Kimi K2: 384 experts; Grok-1: expert FFN 32768; Gemma: vocab 256000; Llama 4
// Scout: context 10M) and low enough that every product the readers form (tensor shapes,
// layer x expert pair ids, the lookahead head's K x L x E outputs, 3 x H x F x 4 expert bytes)
// fits in int64 with room to spare: a hostile config.json is refused here, by name, instead of
// overflowing or allocating without end further on.
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxHidden = int64_t{1} << 16;
constexpr int64_t kMaxLayers = int64_t{1} << 12;
constexpr int64_t kMaxHeads = int64_t{1} << 12;
constexpr int64_t kMaxHeadDim = int64_t{1} << 12;
constexpr int64_t kMaxLoraRank = int64_t{1} << 16;
// Expert ids are 16-bit in traces (docs/trace-format.md).
constexpr int64_t kMaxExperts = 65535;
constexpr int64_t kMaxSharedExperts = int64_t{1} << 12;
constexpr int64_t kMaxIntermediate = int64_t{1} << 18;
constexpr int64_t kMaxPositions = int64_t{1} << 24;
constexpr int64_t kMaxLookaheadSteps = int64_t{1} << 10;
// (layer, expert) pairs: packs, manifests and the intent classifier hold one entry per pair
// (DeepSeek-V3 has 15616, Kimi K2 23424).
constexpr int64_t kMaxPairs = int64_t{1} << 20;

void config_validate(const ModelConfig& c, const std::string& what) {
    auto positive = [&](int64_t v, const char* name) {
        if (v <= 0) fail("{}: {} must be positive (got {})", what, name, v);
    };
    positive(c.vocab_size, "vocab_size");
    positive(c.hidden_size, "hidden_size");
    positive(c.num_hidden_layers, "num_hidden_layers");
    positive(c.num_attention_heads, "num_attention_heads");
    positive(c.n_routed_experts, "n_routed_experts");
    positive(c.num_experts_per_tok, "num_experts_per_tok");
    positive(c.moe_intermediate_size, "moe_intermediate_size");
    positive(c.max_position_embeddings, "max_position_embeddings");
    if (c.n_shared_experts < 0) fail("{}: n_shared_experts must be >= 0", what);
    // Every size field, used by this model's layers or not, lies in [0, max].
    auto bounded = [&](int64_t v, const char* name, int64_t max) {
        if (v < 0 || v > max) fail("{}: {} is {}, outside 0 .. {}", what, name, v, max);
    };
    bounded(c.vocab_size, "vocab_size", kMaxVocab);
    bounded(c.hidden_size, "hidden_size", kMaxHidden);
    bounded(c.num_hidden_layers, "num_hidden_layers", kMaxLayers);
    bounded(c.num_attention_heads, "num_attention_heads", kMaxHeads);
    bounded(c.num_key_value_heads, "num_key_value_heads", kMaxHeads);
    bounded(c.head_dim, "head_dim", kMaxHeadDim);
    bounded(c.kv_lora_rank, "kv_lora_rank", kMaxLoraRank);
    bounded(c.qk_nope_head_dim, "qk_nope_head_dim", kMaxHeadDim);
    bounded(c.qk_rope_head_dim, "qk_rope_head_dim", kMaxHeadDim);
    bounded(c.v_head_dim, "v_head_dim", kMaxHeadDim);
    if (c.n_routed_experts > kMaxExperts) {
        fail("{}: n_routed_experts is {}, above {} (expert ids are 16-bit in traces)", what, c.n_routed_experts, kMaxExperts);
    }
    bounded(c.num_experts_per_tok, "num_experts_per_tok", kMaxExperts);
    bounded(c.n_shared_experts, "n_shared_experts", kMaxSharedExperts);
    bounded(c.moe_intermediate_size, "moe_intermediate_size", kMaxIntermediate);
    bounded(c.max_position_embeddings, "max_position_embeddings", kMaxPositions);
    bounded(c.sliding_window, "sliding_window", kMaxPositions);
    bounded(c.lookahead_hidden_size, "lookahead_hidden_size", kMaxHidden);
    if (c.lookahead_steps > kMaxLookaheadSteps) fail("{}: lookahead_steps is {}, above {}", what, c.lookahead_steps, kMaxLookaheadSteps);
    if (c.num_hidden_layers * c.n_routed_experts > kMaxPairs) {
        fail("{}: {} layers x {} experts is {} (layer, expert) pairs, above {}", what, c.num_hidden_layers, c.n_routed_experts,
             c.num_hidden_layers * c.n_routed_experts, kMaxPairs);
    }
    if (c.num_experts_per_tok > c.n_routed_experts) {
        fail("{}: num_experts_per_tok ({}) exceeds n_routed_experts ({})", what, c.num_experts_per_tok,
             c.n_routed_experts);
    }
    if (static_cast<int64_t>(c.attention_pattern.size()) != c.num_hidden_layers) {
        fail("{}: attention_pattern has {} entries for {} layers", what, c.attention_pattern.size(),
             c.num_hidden_layers);
    }
    bool has_mla = false, has_gqa = false, has_swa = false;
    for (AttentionKind k : c.attention_pattern) {
        has_mla |= k == AttentionKind::mla;
        has_gqa |= k != AttentionKind::mla;
        has_swa |= k == AttentionKind::swa;
    }
    if (has_mla) {
        positive(c.kv_lora_rank, "kv_lora_rank");
        positive(c.qk_nope_head_dim, "qk_nope_head_dim");
        positive(c.qk_rope_head_dim, "qk_rope_head_dim");
        positive(c.v_head_dim, "v_head_dim");
        if (c.qk_rope_head_dim % 2 != 0) fail("{}: qk_rope_head_dim must be even", what);
    }
    if (has_gqa) {
        positive(c.num_key_value_heads, "num_key_value_heads");
        positive(c.head_dim, "head_dim");
        if (c.head_dim % 2 != 0) fail("{}: head_dim must be even (RoPE rotates halves)", what);
        if (c.num_attention_heads % c.num_key_value_heads != 0) {
            fail("{}: num_attention_heads ({}) is not a multiple of num_key_value_heads ({})", what,
                 c.num_attention_heads, c.num_key_value_heads);
        }
    }
    if (has_swa) positive(c.sliding_window, "sliding_window");
    if (!has_gqa && (c.attention_bias || c.qk_norm != QkNorm::none || c.clip_qkv != 0.0)) {
        fail("{}: attention_bias, qk_norm and clip_qkv apply to GQA layers, and the model has none", what);
    }
    if (!std::isfinite(c.clip_qkv) || c.clip_qkv < 0) fail("{}: clip_qkv must be >= 0 and finite (0: no clipping; got {})", what, c.clip_qkv);
    if (c.shared_expert_gate && c.n_shared_experts == 0) fail("{}: shared_expert_gate needs a shared expert (n_shared_experts is 0)", what);
    bounded(c.shared_expert_intermediate_size, "shared_expert_intermediate_size", kMaxIntermediate);
    bounded(c.q_lora_rank, "q_lora_rank", kMaxLoraRank);
    bounded(c.intermediate_size, "intermediate_size", kMaxIntermediate);
    bounded(c.first_k_dense_replace, "first_k_dense_replace", c.num_hidden_layers);
    if (c.moe_layer_freq < 1 || c.moe_layer_freq > c.num_hidden_layers) {
        fail("{}: moe_layer_freq is {}, outside 1 .. {}", what, c.moe_layer_freq, c.num_hidden_layers);
    }
    if (c.n_moe_layers() == 0) fail("{}: no layer has experts (first_k_dense_replace {}, moe_layer_freq {})", what, c.first_k_dense_replace, c.moe_layer_freq);
    if (c.n_moe_layers() < c.num_hidden_layers) positive(c.intermediate_size, "intermediate_size (the dense layers' MLP width)");
    if (c.q_lora_rank > 0 && !has_mla) fail("{}: q_lora_rank applies to MLA layers, and the model has none", what);
    if (c.n_group < 1 || c.topk_group < 1 || c.topk_group > c.n_group || c.n_routed_experts % c.n_group != 0) {
        fail("{}: n_group {} and topk_group {} must satisfy 1 <= topk_group <= n_group, n_group dividing n_routed_experts ({})", what,
             c.n_group, c.topk_group, c.n_routed_experts);
    }
    if (c.topk_method != TopkMethod::greedy && c.topk_group * (c.n_routed_experts / c.n_group) < c.num_experts_per_tok) {
        fail("{}: topk_group {} groups of {} experts hold fewer than num_experts_per_tok {}", what, c.topk_group,
             c.n_routed_experts / c.n_group, c.num_experts_per_tok);
    }
    if (c.topk_method == TopkMethod::noaux_tc && c.n_routed_experts / c.n_group < 2) fail("{}: noaux_tc ranks groups by their two best experts: groups need 2 or more", what);
    if (!std::isfinite(c.routed_scaling_factor) || c.routed_scaling_factor <= 0) {
        fail("{}: routed_scaling_factor must be positive and finite (got {})", what, c.routed_scaling_factor);
    }
    if (c.rope_scaling.on()) {
        const RopeScaling& y = c.rope_scaling;
        if (!std::isfinite(y.factor) || y.factor < 1.0) fail("{}: rope_scaling factor must be >= 1 (got {})", what, y.factor);
        positive(y.original_max_position_embeddings, "rope_scaling original_max_position_embeddings");
        for (double v : {y.beta_fast, y.beta_slow, y.mscale, y.mscale_all_dim}) {
            if (!std::isfinite(v) || v < 0) fail("{}: rope_scaling beta_fast, beta_slow, mscale and mscale_all_dim must be finite and >= 0", what);
        }
        if (y.beta_fast <= 0 || y.beta_slow <= 0) fail("{}: rope_scaling beta_fast and beta_slow must be positive", what);
    }
    // Comparisons alone let NaN through, and an infinite eps or theta is no model: real numbers
    // must be finite (JSON cannot spell NaN or inf, but configs built in code can hold them).
    if (!std::isfinite(c.rms_norm_eps) || c.rms_norm_eps <= 0) fail("{}: rms_norm_eps must be positive and finite (got {})", what, c.rms_norm_eps);
    if (!std::isfinite(c.rope_theta) || c.rope_theta <= 0) fail("{}: rope_theta must be positive and finite (got {})", what, c.rope_theta);
    if (c.lookahead_steps < 0) fail("{}: lookahead_steps must be >= 0", what);
    if (c.lookahead_steps > 0) positive(c.lookahead_hidden_size, "lookahead_hidden_size");
    if (c.lookahead_input_layer < 0 || c.lookahead_input_layer >= c.num_hidden_layers) {
        fail("{}: lookahead_input_layer {} is not a layer (0 .. {})", what, c.lookahead_input_layer, c.num_hidden_layers - 1);
    }
}

LossWeights loss_weights_from_json(const json& j, const std::string& what) {
    if (!j.is_object()) fail("{}: config is not a JSON object", what);
    LossWeights w;
    w.lambda_balance = get_double(j, "lambda_balance", what);
    w.lambda_temporal = get_double(j, "lambda_temporal", what);
    w.lambda_lookahead = get_double(j, "lambda_lookahead", what);
    w.lambda_router_kl = get_double(j, "lambda_router_kl", what);
    w.fallback_mask_prob = get_double(j, "fallback_mask_prob", what);
    loss_weights_validate(w, what);
    return w;
}

void loss_weights_validate(const LossWeights& w, const std::string& what) {
    for (auto [v, name] : {std::pair{w.lambda_balance, "lambda_balance"}, std::pair{w.lambda_temporal, "lambda_temporal"},
                           std::pair{w.lambda_lookahead, "lambda_lookahead"}, std::pair{w.lambda_router_kl, "lambda_router_kl"}}) {
        // A negative weight would reward the very thing its loss term penalises.
        if (!std::isfinite(v) || v < 0) fail("{}: {} must be finite and >= 0 (got {})", what, name, v);
    }
    if (!(w.fallback_mask_prob >= 0 && w.fallback_mask_prob < 1)) {  // written so that NaN fails too
        fail("{}: fallback_mask_prob must be in [0, 1) (got {})", what, w.fallback_mask_prob);
    }
}

LossWeights loss_weights_load(const std::string& config_path) {
    json j;
    try {
        j = json::parse(file_read_all(config_path));
    } catch (const json::exception& e) {
        fail("{}: not valid JSON: {}", config_path, e.what());
    }
    return loss_weights_from_json(j, config_path);
}

bool lookahead_reads_own_routing(const ModelConfig& c) { return c.lookahead_input_layer == c.num_hidden_layers - 1; }

ModelConfig config_parse(const std::string& text, const std::string& what) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        fail("{}: not valid JSON: {}", what, e.what());
    }
    return config_from_json(j, what);
}

ModelConfig config_load(const std::string& path) { return config_parse(file_read_all(path), path); }

nlohmann::ordered_json config_to_json(const ModelConfig& c, const LossWeights& w) {
    nlohmann::ordered_json j;
    j["model_type"] = c.model_type;
    j["vocab_size"] = c.vocab_size;
    j["hidden_size"] = c.hidden_size;
    j["num_hidden_layers"] = c.num_hidden_layers;
    j["num_attention_heads"] = c.num_attention_heads;
    j["num_key_value_heads"] = c.num_key_value_heads;
    j["head_dim"] = c.head_dim;
    j["kv_lora_rank"] = c.kv_lora_rank;
    j["qk_nope_head_dim"] = c.qk_nope_head_dim;
    j["qk_rope_head_dim"] = c.qk_rope_head_dim;
    j["v_head_dim"] = c.v_head_dim;
    j["n_routed_experts"] = c.n_routed_experts;
    j["num_experts_per_tok"] = c.num_experts_per_tok;
    j["n_shared_experts"] = c.n_shared_experts;
    j["moe_intermediate_size"] = c.moe_intermediate_size;
    j["norm_topk_prob"] = c.norm_topk_prob;
    j["rms_norm_eps"] = c.rms_norm_eps;
    j["rope_theta"] = c.rope_theta;
    j["max_position_embeddings"] = c.max_position_embeddings;
    j["sliding_window"] = c.sliding_window;
    j["tie_word_embeddings"] = c.tie_word_embeddings;
    nlohmann::ordered_json pattern = nlohmann::ordered_json::array();
    for (AttentionKind k : c.attention_pattern) pattern.push_back(attention_kind_name(k));
    j["attention_pattern"] = pattern;
    j["attention_bias"] = c.attention_bias;
    j["qk_norm"] = qk_norm_name(c.qk_norm);
    j["clip_qkv"] = c.clip_qkv;
    j["shared_expert_gate"] = c.shared_expert_gate;
    j["shared_expert_intermediate_size"] = c.shared_expert_intermediate_size;
    j["source_model_type"] = c.source_model_type;
    j["q_lora_rank"] = c.q_lora_rank;
    if (c.rope_scaling.on()) {
        const RopeScaling& y = c.rope_scaling;
        j["rope_scaling"] = {{"type", "yarn"}, {"factor", y.factor}, {"original_max_position_embeddings", y.original_max_position_embeddings},
                             {"beta_fast", y.beta_fast}, {"beta_slow", y.beta_slow}, {"mscale", y.mscale}, {"mscale_all_dim", y.mscale_all_dim}};
    }
    j["first_k_dense_replace"] = c.first_k_dense_replace;
    j["moe_layer_freq"] = c.moe_layer_freq;
    j["intermediate_size"] = c.intermediate_size;
    j["scoring_func"] = scoring_func_name(c.scoring_func);
    j["topk_method"] = topk_method_name(c.topk_method);
    j["n_group"] = c.n_group;
    j["topk_group"] = c.topk_group;
    j["routed_scaling_factor"] = c.routed_scaling_factor;
    j["lookahead_steps"] = c.lookahead_steps;
    j["lookahead_hidden_size"] = c.lookahead_hidden_size;
    j["lookahead_target"] = lookahead_target_name(c.lookahead_target);
    j["lookahead_input_layer"] = c.lookahead_input_layer;
    j["lambda_balance"] = w.lambda_balance;
    j["lambda_temporal"] = w.lambda_temporal;
    j["lambda_lookahead"] = w.lambda_lookahead;
    j["lambda_router_kl"] = w.lambda_router_kl;
    j["fallback_mask_prob"] = w.fallback_mask_prob;
    j["expert_dtype"] = weight_type_name(c.expert_dtype);
    return j;
}

void config_save(const ModelConfig& c, const LossWeights& w, const std::string& path) {
    file_write_atomic(path, config_to_json(c, w).dump(2) + "\n");
}

}  // namespace chronos
