// fuzz_config.cpp: libFuzzer target for config_parse (config.json). Any input must either parse
// into a config that validates again, survives a JSON round trip unchanged and whose tensor
// shapes all fit in int64 bytes, or be rejected with chronos::Error; a crash, a sanitizer
// report or another exception (json::exception, std::length_error...) is a bug.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "format/model_config.h"
#include "core/error.h"
#include "fuzz_rejection.h"

namespace {

// a * b, aborting where the product leaves int64 (the bounds in config_validate exist to
// prevent exactly that).
int64_t mul(int64_t a, int64_t b) {
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r)) std::abort();
    return r;
}

// The element counts of the largest tensors checkpoint_tensor_specs derives from a config,
// times 4 bytes (F32): none may overflow.
void check_sizes(const chronos::ModelConfig& c) {
    const int64_t H = c.hidden_size, nh = c.num_attention_heads, F = c.moe_intermediate_size;
    const int64_t pairs = mul(c.num_hidden_layers, c.n_routed_experts);
    mul(mul(c.vocab_size, H), 4);
    mul(mul(mul(nh, c.qk_nope_head_dim + c.qk_rope_head_dim), H), 4);
    mul(mul(mul(nh, c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank), 4);
    mul(mul(c.kv_lora_rank + c.qk_rope_head_dim, H), 4);
    mul(mul(mul(nh, c.v_head_dim), H), 4);
    mul(mul(mul(c.num_key_value_heads, c.head_dim), H), 4);
    mul(mul(mul(nh, c.head_dim), H), 4);
    mul(mul(mul(3, F), H), 4);  // one expert's bytes
    mul(mul(mul(mul(c.n_shared_experts, F), H), 3), 4);
    mul(mul(c.lookahead_hidden_size, H + pairs), 4);
    mul(mul(mul(c.lookahead_steps, pairs), c.lookahead_hidden_size), 4);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    chronos::ModelConfig c;
    chronos::LossWeights w;
    try {
        c = chronos::config_parse(text, "fuzz");
        w = chronos::loss_weights_from_json(nlohmann::json::parse(text), "fuzz");
    } catch (const chronos::Error& e) {
        fuzz_check_rejection(e);  // rejected cleanly
        return 0;
    }
    // Accepted: the promises of the reader must hold; an exception from here on is a bug too.
    chronos::config_validate(c, "fuzz (again)");
    if (static_cast<int64_t>(c.attention_pattern.size()) != c.num_hidden_layers) std::abort();
    if (c.num_experts_per_tok < 1 || c.num_experts_per_tok > c.n_routed_experts || c.n_routed_experts > 65535) std::abort();
    if (c.lookahead_input_layer < 0 || c.lookahead_input_layer >= c.num_hidden_layers) std::abort();
    for (double x : {c.rms_norm_eps, c.rope_theta, w.lambda_balance, w.lambda_temporal, w.lambda_lookahead, w.lambda_router_kl, w.fallback_mask_prob}) {
        if (!std::isfinite(x)) std::abort();
    }
    if (w.lambda_router_kl < 0 || !(w.fallback_mask_prob >= 0 && w.fallback_mask_prob < 1)) std::abort();
    check_sizes(c);
    const std::string once = chronos::config_to_json(c, w).dump();
    const chronos::ModelConfig again = chronos::config_parse(once, "fuzz (round trip)");
    const chronos::LossWeights again_w = chronos::loss_weights_from_json(nlohmann::json::parse(once), "fuzz (round trip)");
    if (chronos::config_to_json(again, again_w).dump() != once) std::abort();
    return 0;
}
