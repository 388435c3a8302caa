// losses.cpp: see losses.h. Written for any floating dtype so the finite-difference tests can
// run them in double precision.
#include "train/losses.h"

namespace chronos {

torch::Tensor loss_balance(const torch::Tensor& probs, const torch::Tensor& topk, const torch::Tensor& valid) {
    const int64_t E = probs.size(-1), k = topk.size(-1);
    torch::Tensor v = valid.to(probs.scalar_type());                              // [B, T]
    torch::Tensor n = v.sum(1);                                                   // [B] valid tokens
    // f: assignment counts per expert (no gradient, as in Switch).
    torch::Tensor onehot = torch::zeros({probs.size(0), probs.size(1), E}, probs.options());
    onehot.scatter_add_(2, topk, v.unsqueeze(2).expand({-1, -1, k}).contiguous());
    torch::Tensor f = onehot.sum(1) / (n * static_cast<double>(k)).clamp_min(1).unsqueeze(1);  // [B, E]
    torch::Tensor P = (probs * v.unsqueeze(2)).sum(1) / n.clamp_min(1).unsqueeze(1);          // [B, E]
    torch::Tensor per_seq = static_cast<double>(E) * (f * P).sum(1);                          // [B]
    torch::Tensor has = (n > 0).to(probs.scalar_type());
    return (per_seq * has).sum() / has.sum().clamp_min(1);
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
