// losses.h: the pretraining objective's auxiliary terms. All take the router outputs of one
// layer and a validity mask (padding excluded) and return a scalar.
//
//   balance   Switch-style, per sequence: E * sum_e f_e * P_e, f_e the share of the
//             sequence's top-k assignments that went to e, P_e its mean router probability;
//             averaged over sequences. Per sequence, so data-parallel shards and gradient
//             accumulation give the same loss as one big batch.
//   temporal  mean over adjacent valid pairs (t, t+1) of 1 - sum_{e in topk(t)} p_t+1,e: the
//             router's mass at t+1 outside the experts token t used. Adjacent tokens should
//             reuse experts so they stay resident. (A squared difference of the distributions
//             was tried first: a flat router minimises it while its top-k flips freely, so it
//             raised the switch rate; this form rewards reuse and confidence together.)
//   lookahead mean over valid t with t+k valid of CE(stopgrad(p_{t+k}), softmax(z_{t,k})).
#pragma once

#include <torch/torch.h>

namespace chronos {

// probs [B, T, E], topk [B, T, k] int64, valid [B, T] bool.
torch::Tensor loss_balance(const torch::Tensor& probs, const torch::Tensor& topk, const torch::Tensor& valid);
// probs [B, T, E], topk [B, T, k] int64 (the experts used), valid [B, T] bool.
torch::Tensor loss_temporal(const torch::Tensor& probs, const torch::Tensor& topk, const torch::Tensor& valid);
// logits [B, T, E] predicted at t for t+k; target_probs [B, T, E] (the real router, detached
// inside); valid [B, T]; k >= 1.
torch::Tensor loss_lookahead(const torch::Tensor& logits, const torch::Tensor& target_probs, const torch::Tensor& valid, int64_t k);
// Switch rate of one layer: fraction of the top-k set that changes between adjacent valid tokens.
double switch_rate(const torch::Tensor& topk, const torch::Tensor& valid, int64_t n_experts);

}  // namespace chronos
