// objective.cpp: see objective.h.
#include "train/objective.h"

#include "train/losses.h"

namespace chronos {

std::vector<std::vector<torch::Tensor>> lookahead_terms(const ForwardOutput& out, const torch::Tensor& valid, const ModelConfig& c) {
    std::vector<std::vector<torch::Tensor>> terms;
    if (!out.lookahead_logits.defined()) return terms;
    // One target per layer, shared by every k (loss_lookahead shifts it by k).
    std::vector<torch::Tensor> targets;
    for (int64_t l = 0; l < c.n_moe_layers(); ++l) {
        const torch::Tensor& probs = out.router_probs[static_cast<size_t>(l)];
        targets.push_back(c.lookahead_target == LookaheadTarget::router_topk
                              ? lookahead_target_topk(out.router_topk[static_cast<size_t>(l)], c.n_routed_experts, probs.scalar_type())
                              : probs);
    }
    for (int64_t k = 1; k <= c.lookahead_steps; ++k) {
        terms.emplace_back();
        for (int64_t l = 0; l < c.n_moe_layers(); ++l) {
            torch::Tensor z = out.lookahead_logits.select(2, k - 1).select(2, l);  // [B, T, E]
            terms.back().push_back(loss_lookahead(z, targets[static_cast<size_t>(l)], valid, k));
        }
    }
    return terms;
}

torch::Tensor lookahead_total(const std::vector<std::vector<torch::Tensor>>& terms) {
    std::vector<torch::Tensor> all;
    for (const auto& row : terms) all.insert(all.end(), row.begin(), row.end());
    return torch::stack(all).mean();
}

RoutingTerms routing_terms(ChronosModel& model, const ForwardOutput& out, const torch::Tensor& valid, const torch::Tensor& base,
                           const std::function<void(torch::Tensor&)>& sum_counts) {
    const ModelConfig& c = model->config;
    const LossWeights& w = model->losses;
    RoutingTerms r;
    std::vector<torch::Tensor> counts;
    for (int64_t l = 0; l < c.n_moe_layers(); ++l)
        counts.push_back(routing_counts(out.router_topk[static_cast<size_t>(l)], valid, c.n_routed_experts));
    torch::Tensor all_counts = torch::stack(counts);  // [L, 2E + 3]: one collective for all layers
    if (sum_counts) sum_counts(all_counts);
    for (int64_t l = 0; l < c.n_moe_layers(); ++l) {
        const auto& probs = out.router_probs[static_cast<size_t>(l)];
        r.balance.push_back(loss_balance_counted(probs, valid, all_counts[l]));
        r.temporal.push_back(loss_temporal_counted(probs, out.router_topk[static_cast<size_t>(l)], valid, all_counts[l]));
    }
    const double L = static_cast<double>(c.n_moe_layers());
    torch::Tensor total = base;
    if (w.lambda_balance > 0) total = total + w.lambda_balance * torch::stack(r.balance).sum() / L;
    if (w.lambda_temporal > 0) total = total + w.lambda_temporal * torch::stack(r.temporal).sum() / L;
    r.lookahead = lookahead_terms(out, valid, c);
    if (!r.lookahead.empty() && w.lambda_lookahead > 0) total = total + w.lambda_lookahead * lookahead_total(r.lookahead);
    r.total = total;
    return r;
}

ObjectiveTerms objective_pretrain(ChronosModel& model, const torch::Tensor& ids, const torch::Tensor& keep,
                                  const std::function<void(torch::Tensor&)>& sum_counts) {
    const ModelConfig& c = model->config;
    const int64_t B = ids.size(0), T = ids.size(1) - 1;
    torch::Tensor inputs = ids.narrow(1, 0, T), targets = ids.narrow(1, 1, T);
    ForwardOptions fo;
    fo.keep = keep;
    ObjectiveTerms r;
    r.out = model->forward(inputs, fo);
    r.ce = torch::nn::functional::cross_entropy(r.out.logits.reshape({B * T, c.vocab_size}), targets.reshape({B * T}));
    // Packed sequences have no padding; the mask is kept explicit for the stages that pad.
    torch::Tensor valid = targets != kTokenPad;
    RoutingTerms rt = routing_terms(model, r.out, valid, r.ce, sum_counts);
    r.balance = std::move(rt.balance);
    r.temporal = std::move(rt.temporal);
    r.lookahead = std::move(rt.lookahead);
    r.total = rt.total;
    return r;
}

// Widens a [rows, T + 1] int32 buffer into the int64 ids the embedding takes.
static torch::Tensor ids_from_buffer(const std::vector<int32_t>& buf, int64_t rows, int64_t seq_len) {
    return torch::from_blob(const_cast<int32_t*>(buf.data()), {rows, seq_len + 1}, torch::kInt32).to(torch::kInt64);
}

torch::Tensor sampler_batch(SequenceSampler& sampler, int64_t first, int64_t rows, int64_t seq_len) {
    std::vector<int32_t> buf(static_cast<size_t>(rows * (seq_len + 1)));
    for (int64_t r = 0; r < rows; ++r) sampler.fill(first + r, buf.data() + r * (seq_len + 1));
    return ids_from_buffer(buf, rows, seq_len);
}

torch::Tensor window_ids(const std::vector<int32_t>& tokens, int64_t first, int64_t rows, int64_t seq_len) {
    std::vector<int32_t> buf(static_cast<size_t>(rows * (seq_len + 1)));
    windows_copy(tokens, first, rows, seq_len, buf.data());
    return ids_from_buffer(buf, rows, seq_len);
}

double held_out_mean(const std::vector<int32_t>& tokens, int64_t seq_len, int64_t rows, int64_t batches,
                     const std::function<double(const torch::Tensor& ids)>& loss) {
    torch::NoGradGuard no_grad;
    const int64_t windows = static_cast<int64_t>(tokens.size() - 1) / seq_len;
    double sum = 0;
    int64_t n = 0;
    for (int64_t b = 0; b < batches && b * rows < windows; ++b) {
        const int64_t r = std::min(rows, windows - b * rows);
        sum += loss(window_ids(tokens, b * rows, r, seq_len)) * static_cast<double>(r);
        n += r;
    }
    return n > 0 ? sum / static_cast<double>(n) : std::nan("");
}

double lookahead_mean(const ObjectiveTerms& terms) {
    return terms.lookahead.empty() ? 0.0 : lookahead_total(terms.lookahead).item<double>();
}

double terms_mean(const std::vector<torch::Tensor>& terms) {
    if (terms.empty()) return 0.0;
    double s = 0;
    for (const auto& t : terms) s += t.item<double>();
    return s / static_cast<double>(terms.size());
}

double model_flops_per_token(const ModelConfig& c, int64_t seq_len) {
    const double H = static_cast<double>(c.hidden_size), nh = static_cast<double>(c.num_attention_heads);
    double weights = 0, attn = 0;
    for (AttentionKind kind : c.attention_pattern) {
        double ctx = kind == AttentionKind::swa ? std::min<double>(static_cast<double>(c.sliding_window), seq_len / 2.0) : seq_len / 2.0;
        if (kind == AttentionKind::mla) {
            const double qk = static_cast<double>(c.qk_nope_head_dim + c.qk_rope_head_dim), dv = static_cast<double>(c.v_head_dim);
            const double r = static_cast<double>(c.kv_lora_rank);
            weights += H * nh * qk + H * (r + static_cast<double>(c.qk_rope_head_dim)) + r * nh * (static_cast<double>(c.qk_nope_head_dim) + dv) + nh * dv * H;
            attn += ctx * nh * (qk + dv);
        } else {
            const double hd = static_cast<double>(c.head_dim), kv = static_cast<double>(c.num_key_value_heads);
            weights += H * nh * hd * 2 + H * kv * hd * 2;
            attn += ctx * nh * hd * 2;
        }
        const double F = static_cast<double>(c.moe_intermediate_size);
        weights += H * static_cast<double>(c.n_routed_experts);  // router
        weights += 3 * H * F * static_cast<double>(c.num_experts_per_tok + c.n_shared_experts);
    }
    weights += H * static_cast<double>(c.vocab_size);  // lm_head (tied or not)
    double head = 0;
    if (c.lookahead_steps > 0 && c.lookahead_hidden_size > 0) {
        // The lookahead head reads detached inputs: forward and weight gradients for both of its
        // matrices, an input gradient for the second only.
        const double D = static_cast<double>(c.lookahead_hidden_size);
        const double LE = static_cast<double>(c.n_moe_layers() * c.n_routed_experts);
        const double up = (H + LE) * D, out = D * static_cast<double>(c.lookahead_steps) * LE;
        head = 2.0 * (2.0 * up + 3.0 * out);
    }
    return 3.0 * 2.0 * (weights + attn) + head;
}

}  // namespace chronos
