// estimate.cpp: a config's parameters, bytes and memory (estimate.h). The parameter groups come
// from the checkpoint's own tensor list (checkpoint_tensor_specs), the session's buffers from
// the shapes the Session and layers.h allocate, so the estimate follows the code it predicts.
#include "runtime/estimate.h"

#include <omp.h>

#include <fmt/format.h>

#include <algorithm>

#include "format/checkpoint.h"
#include "format/pack.h"
#include "runtime/kernels.h"
#include "runtime/memory_budget.h"

namespace chronos::rt {

namespace {

bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// The group of a checkpoint tensor, by its name (docs/format.md, "Tensor names and shapes").
std::string tensor_group(const std::string& name, const ModelConfig& c) {
    if (contains(name, "embed_tokens")) return "embeddings";
    if (name.rfind("lm_head", 0) == 0) return "lm_head";
    if (name.rfind("lookahead", 0) == 0) return "lookahead";
    if (contains(name, ".mlp.experts.")) return "experts";
    if (contains(name, ".mlp.shared_experts.") || contains(name, ".mlp.shared_expert_gate.")) return "shared_experts";
    if (contains(name, ".mlp.gate.")) return "router";
    if (contains(name, ".mlp.")) return "dense_mlp";  // a dense layer's MLP (first_k_dense_replace, moe_layer_freq)
    if (contains(name, "norm") && !contains(name, "self_attn")) return "norms";
    if (contains(name, ".self_attn.")) {
        const size_t at = name.find("layers.") + 7;
        const int64_t l = std::stoll(name.substr(at, name.find('.', at) - at));
        return std::string("attention_") + attention_kind_name(c.attention_pattern[static_cast<size_t>(l)]);
    }
    return "other";
}

uint64_t stored_bytes(WeightType t, const std::vector<int64_t>& shape) {
    if (shape.size() != 2) {  // vectors (norms) stay f32 whatever the type
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        return static_cast<uint64_t>(n) * 4;
    }
    return weight_matrix_bytes(t, shape[0], shape[1]);
}

// The float and int32 buffers a Session allocates for its context (session.cpp, layers.cpp):
// the residual stream and its companions for P rows, attention, grouping and expert scratch,
// logits and routings. The KV caches are counted apart.
uint64_t session_buffer_bytes(const ModelConfig& c) {
    const int64_t P = c.max_position_embeddings, H = c.hidden_size, E = c.n_routed_experts, k = c.num_experts_per_tok;
    const int64_t F = c.moe_intermediate_size, L = c.n_moe_layers(), V = c.vocab_size;
    const int64_t Fs = std::max(c.shared_intermediate(), L < c.num_hidden_layers ? c.intermediate_size : 0);  // session.cpp
    const int64_t nh = c.num_attention_heads, nkv = c.num_key_value_heads, hd = c.head_dim;
    const int64_t r = c.kv_lora_rank, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim;
    int64_t floats = 3 * P * H + P * E + P * k + P * k * H + 2 * P * Fs + V + H + 3 * L * E;  // session.cpp
    floats += c.n_routed_experts + 2 * c.n_group;       // router scratch
    floats += P * c.q_lora_rank;                          // MLA q latent
    floats += P * nh * std::max(dn + dr, hd) + P * (r + dr) + 2 * P * nkv * hd + P * nh * std::max(dv, hd) +
              (2 * r + P + 16) * omp_get_max_threads();  // AttentionScratch
    floats += P * k;                                      // MoeGroups weights
    floats += P * H + 2 * P * F;                          // ExpertScratch
    const int64_t ints = P * k + E + (3 * E + 1) + P * k;  // topi, order, MoeGroups
    return static_cast<uint64_t>(floats + ints) * 4;
}

}  // namespace

Estimate estimate_config(const ModelConfig& c, const EstimateOptions& o) {
    Estimate e;
    static const char* kOrder[] = {"embeddings", "attention_mla", "attention_gqa", "attention_swa", "router", "experts", "shared_experts",
                                   "dense_mlp", "norms", "lm_head", "lookahead", "other"};
    for (const char* g : kOrder) e.groups.push_back({g, 0, std::string(g) != "norms"});
    const WeightType types[] = {WeightType::f32, WeightType::bf16, WeightType::f16, WeightType::q8, WeightType::q4};
    std::vector<uint64_t> dense_by_type(5, 0);
    for (const TensorSpec& t : checkpoint_tensor_specs(c)) {
        int64_t n = 1;
        for (int64_t d : t.shape) n *= d;
        const std::string g = tensor_group(t.name, c);
        for (auto& grp : e.groups) {
            if (grp.name == g) grp.params += n;
        }
        e.params_total += n;
        if (g == "experts") {
            e.params_experts += n;
        } else {
            e.params_dense += n;
            for (size_t i = 0; i < 5; ++i) dense_by_type[i] += stored_bytes(types[i], t.shape);
        }
    }
    e.groups.erase(std::remove_if(e.groups.begin(), e.groups.end(), [](const Estimate::Group& g) { return g.params == 0; }), e.groups.end());
    const int64_t pairs = c.n_moe_layers() * c.n_routed_experts;
    for (size_t i = 0; i < 5; ++i) {
        const char* name = weight_type_name(types[i]);
        e.expert_bytes_by_type.emplace_back(name, static_cast<uint64_t>(pairs) * pack_expert_bytes(types[i], c.hidden_size, c.moe_intermediate_size));
        e.dense_bytes_by_type.emplace_back(name, dense_by_type[i]);
        if (types[i] == o.dense) e.dense_bytes = dense_by_type[i];
    }
    // KV cache: MLA keeps the latent and the rope key; GQA and SWA keys and values per KV head
    // (SWA at most its window). fp32 everywhere.
    uint64_t kv_mla = 0, kv_gqa = 0, kv_swa = 0;
    for (AttentionKind kind : c.attention_pattern) {
        const int64_t P = c.max_position_embeddings;
        if (kind == AttentionKind::mla) {
            kv_mla += static_cast<uint64_t>(c.kv_lora_rank + c.qk_rope_head_dim) * 4;
            e.kv_bytes_context += static_cast<uint64_t>(P * (c.kv_lora_rank + c.qk_rope_head_dim)) * 4;
        } else {
            const uint64_t per_token = static_cast<uint64_t>(2 * c.num_key_value_heads * c.head_dim) * 4;
            const int64_t rows = kind == AttentionKind::swa ? std::min(c.sliding_window, P) : P;
            (kind == AttentionKind::swa ? kv_swa : kv_gqa) += per_token;
            e.kv_bytes_context += static_cast<uint64_t>(rows) * per_token + static_cast<uint64_t>(rows) * 8;  // + ring positions
        }
    }
    e.kv_bytes_per_token = {{"mla", kv_mla}, {"gqa", kv_gqa}, {"swa", kv_swa}};
    e.expert_bytes = pack_expert_bytes(o.experts, c.hidden_size, c.moe_intermediate_size);
    e.experts_total_bytes = static_cast<uint64_t>(pairs) * e.expert_bytes;
    const uint64_t slot = (e.expert_bytes + kPackAlignment - 1) / kPackAlignment * kPackAlignment;
    const uint64_t budget = o.ram_budget == 0 ? static_cast<uint64_t>(pairs) * slot : o.ram_budget;
    e.slots = std::min<int64_t>(pairs, static_cast<int64_t>(budget / slot));
    e.pool_bytes = static_cast<uint64_t>(e.slots) * slot;
    e.session_bytes = session_buffer_bytes(c);
    // Prefill widens a narrow matrix by panels (kernels.h); the calling thread keeps the largest.
    int64_t panel = 0;
    if (o.experts != WeightType::f32) {
        for (int64_t in : {c.hidden_size, c.moe_intermediate_size}) panel = std::max(panel, matmul_narrow_panel_floats(in));
    }
    if (o.dense != WeightType::f32) {
        const int64_t heads_out = c.num_attention_heads * std::max(c.v_head_dim, c.head_dim);
        for (int64_t in : {c.hidden_size, c.shared_intermediate(), c.intermediate_size, heads_out, c.q_lora_rank, c.kv_lora_rank}) {
            if (in > 0) panel = std::max(panel, matmul_narrow_panel_floats(in));
        }
    }
    e.session_bytes += static_cast<uint64_t>(panel) * 4;
    e.code_bytes = o.code_bytes > 0 ? o.code_bytes : rss_bytes();
    e.predicted_peak_rss_bytes = e.code_bytes + e.dense_bytes + e.kv_bytes_context + e.session_bytes + e.pool_bytes;
    return e;
}

nlohmann::ordered_json estimate_json(const Estimate& e) {
    nlohmann::ordered_json j;
    nlohmann::ordered_json groups;
    for (const auto& g : e.groups) groups[g.name] = g.params;
    j["params"] = {{"total", e.params_total}, {"experts", e.params_experts}, {"dense", e.params_dense}, {"groups", groups}};
    nlohmann::ordered_json eb, db, kv;
    for (const auto& [k, v] : e.expert_bytes_by_type) eb[k] = v;
    for (const auto& [k, v] : e.dense_bytes_by_type) db[k] = v;
    for (const auto& [k, v] : e.kv_bytes_per_token) kv[k] = v;
    j["expert_bytes_by_type"] = eb;
    j["dense_bytes_by_type"] = db;
    j["kv_bytes_per_token"] = kv;
    j["kv_bytes_context"] = e.kv_bytes_context;
    j["expert_bytes"] = e.expert_bytes;
    j["experts_total_bytes"] = e.experts_total_bytes;
    j["expert_slots"] = e.slots;
    j["expert_pool_bytes"] = e.pool_bytes;
    j["memory"] = {{"code_bytes", e.code_bytes}, {"dense_bytes", e.dense_bytes}, {"kv_cache_bytes", e.kv_bytes_context},
                   {"session_buffer_bytes", e.session_bytes}, {"expert_pool_bytes", e.pool_bytes},
                   {"predicted_peak_rss_bytes", e.predicted_peak_rss_bytes}};
    return j;
}

std::string estimate_text(const Estimate& e) {
    auto mib = [](uint64_t b) { return static_cast<double>(b) / (1 << 20); };
    std::string s = fmt::format("parameters: {} ({} in routed experts, {} dense)\n", e.params_total, e.params_experts, e.params_dense);
    for (const auto& g : e.groups) s += fmt::format("  {:<16} {:>12}\n", g.name, g.params);
    s += "bytes by stored type (experts | dense):\n";
    for (size_t i = 0; i < e.expert_bytes_by_type.size(); ++i) {
        s += fmt::format("  {:<5} {:>10.2f} MiB | {:>8.2f} MiB\n", e.expert_bytes_by_type[i].first, mib(e.expert_bytes_by_type[i].second),
                         mib(e.dense_bytes_by_type[i].second));
    }
    s += "KV cache per token:";
    for (const auto& [k, v] : e.kv_bytes_per_token) {
        if (v > 0) s += fmt::format(" {} {} B", k, v);
    }
    s += fmt::format(" (full context {:.2f} MiB)\n", mib(e.kv_bytes_context));
    s += fmt::format("expert slots at the budget: {} of {} ({:.2f} MiB; one expert {} B)\n", e.slots, e.experts_total_bytes / std::max<uint64_t>(e.expert_bytes, 1),
                     mib(e.pool_bytes), e.expert_bytes);
    s += fmt::format("predicted peak RSS: {:.1f} MiB = code {:.1f} + dense {:.1f} + KV cache {:.1f} + session buffers {:.1f} + expert pool {:.1f}\n",
                     mib(e.predicted_peak_rss_bytes), mib(e.code_bytes), mib(e.dense_bytes), mib(e.kv_bytes_context), mib(e.session_bytes),
                     mib(e.pool_bytes));
    return s;
}

}  // namespace chronos::rt
