// losses.h: the pretraining objective's auxiliary terms. All take the router outputs of one
// layer and a validity mask (padding excluded) and return a scalar.
//
//   balance   Switch-style, over the batch: E * sum_e f_e * P_e, f_e the share of the batch's
//             top-k assignments that went to e, P_e the mean router probability. Over the
//             batch, not per sequence: a sequence may keep to a few experts (that is what
//             temporal locality asks for) as long as the batch as a whole spreads its load.
//             A per-sequence form was tried first and fought the temporal term: the router
//             collapsed onto two experts per layer for every text. f is a count, so data-
//             parallel ranks sum their counts (balance_counts) and each uses the global f with
//             its local P: the mean of the ranks' gradients is the one-big-batch gradient.
//   temporal  mean over adjacent valid pairs (t, t+1) of 1 - sum_{e in topk(t)} p_t+1,e: the
//             router's mass at t+1 outside the experts token t used. Adjacent tokens should
//             reuse experts so they stay resident. (A squared difference of the distributions
//             was tried first: a flat router minimises it while its top-k flips freely, so it
//             raised the switch rate; this form rewards reuse and confidence together.)
//   lookahead mean over valid t with t+k valid of CE(stopgrad(p_{t+k}), softmax(z_{t,k})).
#pragma once

#include <torch/torch.h>

namespace chronos {

// Assignment counts of one layer's batch: [E + 1] float64, per expert then the valid tokens.
torch::Tensor balance_counts(const torch::Tensor& topk, const torch::Tensor& valid, int64_t n_experts);
// probs [B, T, E], valid [B, T] bool, counts [E + 1] from balance_counts (possibly summed over ranks).
torch::Tensor loss_balance_counted(const torch::Tensor& probs, const torch::Tensor& valid, const torch::Tensor& counts);
// probs [B, T, E], topk [B, T, k] int64, valid [B, T] bool: counts from this batch alone.
torch::Tensor loss_balance(const torch::Tensor& probs, const torch::Tensor& topk, const torch::Tensor& valid);
// probs [B, T, E], topk [B, T, k] int64 (the experts used), valid [B, T] bool.
torch::Tensor loss_temporal(const torch::Tensor& probs, const torch::Tensor& topk, const torch::Tensor& valid);
// logits [B, T, E] predicted at t for t+k; target_probs [B, T, E] (the real router, detached
// inside); valid [B, T]; k >= 1.
torch::Tensor loss_lookahead(const torch::Tensor& logits, const torch::Tensor& target_probs, const torch::Tensor& valid, int64_t k);
// Switch rate of one layer: fraction of the top-k set that changes between adjacent valid tokens.
double switch_rate(const torch::Tensor& topk, const torch::Tensor& valid, int64_t n_experts);

}  // namespace chronos
