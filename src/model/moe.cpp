// moe.cpp: SwiGLU experts, the MoE layer with soft gating, and the lookahead head.
#include "core/error.h"
#include "model/model.h"

namespace chronos {

static torch::nn::Linear linear_no_bias(int64_t in, int64_t out) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
}

ExpertImpl::ExpertImpl(int64_t hidden, int64_t inner) {
    gate_proj = register_module("gate_proj", linear_no_bias(hidden, inner));
    up_proj = register_module("up_proj", linear_no_bias(hidden, inner));
    down_proj = register_module("down_proj", linear_no_bias(inner, hidden));
}

torch::Tensor ExpertImpl::forward(const torch::Tensor& x) {
    // gate and up as one [2F, H] product: one larger GEMM (and one in backward) instead of two.
    const int64_t F = gate_proj->weight.size(0);
    torch::Tensor gu = torch::nn::functional::linear(x, torch::cat({gate_proj->weight, up_proj->weight}, 0));  // [N, 2F]
    return down_proj(torch::silu(gu.narrow(-1, 0, F)) * gu.narrow(-1, F, F));
}

MoeLayerImpl::MoeLayerImpl(const ModelConfig& c)
    : n_experts(c.n_routed_experts), top_k(c.num_experts_per_tok), norm_topk(c.norm_topk_prob), scoring(c.scoring_func),
      method(c.topk_method), n_group(c.n_group), topk_group(c.topk_group), scaling(c.routed_scaling_factor) {
    gate = register_module("gate", linear_no_bias(c.hidden_size, n_experts));
    if (method == TopkMethod::noaux_tc) {
        // Adjusted by DeepSeek-V3's auxiliary-loss-free balancing, never by gradients.
        e_score_correction_bias = gate->register_parameter("e_score_correction_bias", torch::zeros({n_experts}), /*requires_grad=*/false);
    }
    experts = register_module("experts", torch::nn::ModuleList());
    for (int64_t e = 0; e < n_experts; ++e) experts->push_back(Expert(c.hidden_size, c.moe_intermediate_size));
    if (c.n_shared_experts > 0) {
        shared_experts = register_module("shared_experts", Expert(c.hidden_size, c.shared_intermediate()));
        if (c.shared_expert_gate) shared_expert_gate = register_module("shared_expert_gate", linear_no_bias(c.hidden_size, 1));
    }
}

MoeOutput MoeLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& availability, const torch::Tensor& keep) {
    const int64_t N = x.size(0);
    // Router in at least float32 (a float64 model stays float64).
    torch::Tensor logits = gate(x);
    logits = logits.to(at::promote_types(logits.scalar_type(), torch::kFloat32));
    torch::Tensor probs = scoring == ScoringFunc::softmax ? torch::softmax(logits, -1) : torch::sigmoid(logits);  // [N, E]
    // The score experts are chosen by, and the groups they may come from (model_config.h).
    torch::Tensor choice = method == TopkMethod::noaux_tc ? probs + e_score_correction_bias.to(probs.scalar_type()) : probs;
    if (method != TopkMethod::greedy) {
        torch::Tensor grouped = choice.view({N, n_group, n_experts / n_group});
        torch::Tensor group_score = method == TopkMethod::group_limited ? std::get<0>(grouped.max(-1))
                                                                         : std::get<0>(grouped.topk(2, -1)).sum(-1);  // [N, n_group]
        torch::Tensor group_idx = std::get<1>(group_score.topk(topk_group, -1));
        torch::Tensor group_mask = torch::zeros_like(group_score).scatter_(1, group_idx, 1.0);
        torch::Tensor expert_mask = group_mask.unsqueeze(-1).expand({N, n_group, n_experts / n_group}).reshape({N, n_experts});
        choice = choice.masked_fill(expert_mask.logical_not(), 0.0);  // as DeepSeek does: 0, not -inf
    }
    torch::Tensor top_i = std::get<1>(choice.topk(top_k, -1));  // [N, k]
    torch::Tensor top_p = probs.gather(1, top_i);
    torch::Tensor w = norm_topk ? top_p / top_p.sum(-1, true) : top_p;
    if (scaling != 1.0) w = w * scaling;
    // Soft gating: the availability mask multiplies the renormalised weights (no second
    // renormalisation); a missing expert's term is exactly zero.
    if (availability.defined()) {
        torch::Tensor a = availability.dim() == 1 ? availability.unsqueeze(0).expand({N, n_experts}) : availability;
        w = w * a.to(w.scalar_type()).gather(1, top_i);
    }
    if (keep.defined()) w = w * keep.to(w.scalar_type());

    // Group the N*k (token, expert) assignments by expert.
    torch::Tensor flat_expert = top_i.reshape({-1});                                          // [N*k]
    torch::Tensor flat_token = torch::arange(N, torch::kInt64).repeat_interleave(top_k);      // [N*k]
    torch::Tensor order = std::get<1>(flat_expert.sort(/*stable=*/true, 0, false));
    torch::Tensor sorted_token = flat_token.index_select(0, order);
    torch::Tensor sorted_w = w.reshape({-1}).index_select(0, order).unsqueeze(1).to(x.scalar_type());
    torch::Tensor counts = torch::bincount(flat_expert, {}, n_experts).to(torch::kCPU);  // the one host sync
    const int64_t* count = counts.data_ptr<int64_t>();
    torch::Tensor xs = x.index_select(0, sorted_token);                                       // [N*k, H]
    std::vector<torch::Tensor> outs;
    outs.reserve(static_cast<size_t>(n_experts));
    int64_t offset = 0;
    for (int64_t e = 0; e < n_experts; ++e) {
        if (count[e] == 0) continue;
        outs.push_back(experts[static_cast<size_t>(e)]->as<Expert>()->forward(xs.narrow(0, offset, count[e])));
        offset += count[e];
    }
    torch::Tensor y = torch::zeros_like(x);
    if (!outs.empty()) y = y.index_add(0, sorted_token, torch::cat(outs, 0) * sorted_w);
    if (!shared_experts.is_empty()) {
        torch::Tensor s = shared_experts->forward(x);
        if (!shared_expert_gate.is_empty()) s = torch::sigmoid(shared_expert_gate(x)) * s;  // [N, 1] * [N, H]
        y = y + s;
    }
    return {y, probs, top_i};
}

LookaheadHeadImpl::LookaheadHeadImpl(const ModelConfig& c)
    : K(c.lookahead_steps), L(c.n_moe_layers()), E(c.n_routed_experts) {
    norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
    up_proj = register_module("up_proj", linear_no_bias(c.hidden_size + L * E, c.lookahead_hidden_size));
    out_proj = register_module("out_proj", linear_no_bias(c.lookahead_hidden_size, K * L * E));
}

torch::Tensor LookaheadHeadImpl::forward(const torch::Tensor& h, const torch::Tensor& route) {
    const int64_t B = h.size(0), T = h.size(1);
    torch::Tensor in = torch::cat({norm(h), route.to(h.scalar_type())}, -1);  // [B, T, H + L*E]
    return out_proj(torch::silu(up_proj(in))).view({B, T, K, L, E});
}

}  // namespace chronos
