// losses.cpp: see losses.h. Written for any floating dtype so the finite-difference tests can
// run them in double precision.
#include "train/losses.h"

namespace chronos {

namespace {

// [B, T-1] mask (as dtype) of adjacent valid pairs (t, t+1).
torch::Tensor adjacent_pairs(const torch::Tensor& valid, c10::ScalarType dtype) {
    const int64_t T = valid.size(1);
    return (valid.narrow(1, 0, T - 1) & valid.narrow(1, 1, T - 1)).to(dtype);
}

// S [E]: the router probabilities summed over the batch's valid tokens.
torch::Tensor probs_sum(const torch::Tensor& probs, const torch::Tensor& valid) {
    return (probs * valid.to(probs.scalar_type()).unsqueeze(2)).sum(std::vector<int64_t>{0, 1});
}

}  // namespace

torch::Tensor routing_counts(const torch::Tensor& topk, const torch::Tensor& valid, int64_t n_experts) {
    const int64_t B = topk.size(0), T = topk.size(1), k = topk.size(-1), E = n_experts;
    torch::NoGradGuard no_grad;
    torch::Tensor counts = torch::zeros({routing_count_cols(E)}, torch::kFloat64);
    torch::Tensor v = valid.to(torch::kFloat64);
    counts.narrow(0, 0, E).scatter_add_(0, topk.reshape({-1}), v.unsqueeze(2).expand({B, T, k}).reshape({-1}));
    counts[E] = v.sum();
    if (T >= 2) {
        torch::Tensor pair = adjacent_pairs(valid, torch::kFloat64);                                   // [B, T-1]
        counts.narrow(0, E + 1, E).scatter_add_(0, topk.narrow(1, 0, T - 1).reshape({-1}),
                                                pair.unsqueeze(2).expand({B, T - 1, k}).reshape({-1}));
        counts[2 * E + 1] = pair.sum();
    }
    counts[2 * E + 2] = 1.0;
    return counts;
}

torch::Tensor loss_balance_counted(const torch::Tensor& probs, const torch::Tensor& valid, const torch::Tensor& counts) {
    const int64_t E = probs.size(-1);
    const double tokens = counts[E].item<double>(), ranks = counts[2 * E + 2].item<double>();
    if (tokens == 0) return torch::zeros({}, probs.options());
    torch::Tensor assigned = counts.narrow(0, 0, E);
    // f: the batch's share of top-k assignments per expert (a count: no gradient, as in Switch).
    torch::Tensor f = (assigned / assigned.sum()).to(probs.scalar_type());   // [E]
    // P_e = S_e / tokens over the whole batch; this rank holds its own tokens' part of S, and
    // ranks * part makes the ranks' mean the whole.
    torch::Tensor P = probs_sum(probs, valid) * (ranks / tokens);           // [E]
    return static_cast<double>(E) * (f * P).sum();
}

torch::Tensor loss_temporal_counted(const torch::Tensor& probs, const torch::Tensor& topk, const torch::Tensor& valid,
                                    const torch::Tensor& counts) {
    const int64_t T = probs.size(1), E = probs.size(-1);
    const double tokens = counts[E].item<double>(), pairs = counts[2 * E + 1].item<double>(),
                 ranks = counts[2 * E + 2].item<double>();
    if (pairs == 0 || tokens == 0) return torch::zeros({}, probs.options());
    // chance: sum_pairs sum_{e in topk(t)} pbar_e = sum_e U_e * S_e / tokens (U from the counts).
    torch::Tensor U = counts.narrow(0, E + 1, E).to(probs.scalar_type());
    torch::Tensor chance = (U * probs_sum(probs, valid)).sum() / tokens;
    torch::Tensor kept = torch::zeros({}, probs.options());
    if (T >= 2) {
        // Experts used at t (a constant selection: no gradient through the top-k choice).
        torch::Tensor used = torch::zeros_like(probs).scatter_(2, topk, 1.0).narrow(1, 0, T - 1);   // [B, T-1, E]
        kept = ((probs.narrow(1, 1, T - 1) * used).sum(-1) * adjacent_pairs(valid, probs.scalar_type())).sum();
    }
    return (chance - kept) * (ranks / pairs);
}

torch::Tensor loss_balance(const torch::Tensor& probs, const torch::Tensor& topk, const torch::Tensor& valid) {
    return loss_balance_counted(probs, valid, routing_counts(topk, valid, probs.size(-1)));
}

torch::Tensor loss_temporal(const torch::Tensor& probs, const torch::Tensor& topk, const torch::Tensor& valid) {
    return loss_temporal_counted(probs, topk, valid, routing_counts(topk, valid, probs.size(-1)));
}

torch::Tensor loss_lookahead(const torch::Tensor& logits, const torch::Tensor& target_probs, const torch::Tensor& valid, int64_t k) {
    const int64_t T = logits.size(1);
    if (T <= k) return torch::zeros({}, logits.options());
    torch::Tensor z = logits.narrow(1, 0, T - k);                       // predictions made at t
    torch::Tensor target = target_probs.narrow(1, k, T - k).detach();   // the real router at t+k
    torch::Tensor pair = (valid.narrow(1, 0, T - k) & valid.narrow(1, k, T - k)).to(logits.scalar_type());
    torch::Tensor ce = -(target.to(z.scalar_type()) * torch::log_softmax(z, -1)).sum(-1);  // [B, T-k]
    return (ce * pair).sum() / pair.sum().clamp_min(1);
}

torch::Tensor lookahead_target_topk(const torch::Tensor& topk, int64_t n_experts, c10::ScalarType dtype) {
    const int64_t k = topk.size(-1);
    std::vector<int64_t> shape = topk.sizes().vec();
    shape.back() = n_experts;
    torch::NoGradGuard no_grad;
    return torch::zeros(shape, topk.options().dtype(dtype)).scatter_(-1, topk, 1.0 / static_cast<double>(k));  // on topk's device
}

double switch_rate(const torch::Tensor& topk, const torch::Tensor& valid, int64_t n_experts) {
    const int64_t T = topk.size(1), k = topk.size(-1);
    if (T < 2) return 0.0;
    torch::Tensor sets = torch::zeros({topk.size(0), T, n_experts}, torch::kFloat32);
    sets.scatter_(2, topk, 1.0f);
    torch::Tensor same = (sets.narrow(1, 0, T - 1) * sets.narrow(1, 1, T - 1)).sum(-1);  // shared experts per pair
    torch::Tensor pair = (valid.narrow(1, 0, T - 1) & valid.narrow(1, 1, T - 1)).to(torch::kFloat32);
    double pairs = pair.sum().item<double>();
    if (pairs == 0) return 0.0;
    double changed = ((static_cast<double>(k) - same) * pair).sum().item<double>();
    return changed / (pairs * static_cast<double>(k));
}

}  // namespace chronos
