// losses.cpp: see losses.h. Written for any floating dtype so the finite-difference tests can
// run them in double precision.
#include "train/losses.h"

namespace chronos {

torch::Tensor balance_counts(const torch::Tensor& topk, const torch::Tensor& valid, int64_t n_experts) {
    const int64_t k = topk.size(-1);
    torch::NoGradGuard no_grad;
    torch::Tensor v = valid.to(torch::kFloat64);
    torch::Tensor counts = torch::zeros({n_experts + 1}, torch::kFloat64);
    counts.narrow(0, 0, n_experts).scatter_add_(0, topk.reshape({-1}), v.unsqueeze(2).expand({-1, -1, k}).reshape({-1}));
    counts[n_experts] = v.sum();
    return counts;
}

torch::Tensor loss_balance_counted(const torch::Tensor& probs, const torch::Tensor& valid, const torch::Tensor& counts) {
    const int64_t E = probs.size(-1);
    const double tokens = counts[E].item<double>();
    if (tokens == 0) return torch::zeros({}, probs.options());
    const double k = counts.narrow(0, 0, E).sum().item<double>() / tokens;
    // f: the batch's share of top-k assignments per expert (a count: no gradient, as in Switch).
    torch::Tensor f = (counts.narrow(0, 0, E) / (tokens * k)).to(probs.scalar_type());                  // [E]
    torch::Tensor v = valid.to(probs.scalar_type());
    torch::Tensor P = (probs * v.unsqueeze(2)).sum(std::vector<int64_t>{0, 1}) / v.sum().clamp_min(1);                       // [E]
    return static_cast<double>(E) * (f * P).sum();
}

torch::Tensor loss_balance(const torch::Tensor& probs, const torch::Tensor& topk, const torch::Tensor& valid) {
    return loss_balance_counted(probs, valid, balance_counts(topk, valid, probs.size(-1)));
}

torch::Tensor loss_temporal(const torch::Tensor& probs, const torch::Tensor& topk, const torch::Tensor& valid) {
    const int64_t T = probs.size(1);
    if (T < 2) return torch::zeros({}, probs.options());
    // Experts used at t (a constant selection: no gradient through the top-k choice).
    torch::Tensor used = torch::zeros_like(probs).scatter_(2, topk, 1.0).narrow(1, 0, T - 1);   // [B, T-1, E]
    torch::Tensor kept = (probs.narrow(1, 1, T - 1) * used).sum(-1);                               // [B, T-1]
    torch::Tensor pair = (valid.narrow(1, 0, T - 1) & valid.narrow(1, 1, T - 1)).to(probs.scalar_type());
    return ((1.0 - kept) * pair).sum() / pair.sum().clamp_min(1);
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
