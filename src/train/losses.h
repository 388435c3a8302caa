// losses.h: the pretraining objective's auxiliary terms. All take the router outputs of one
// layer and a validity mask (padding excluded) and return a scalar.
//
//   balance   Switch-style, over the batch: E * sum_e f_e * P_e, f_e the share of the batch's
//             top-k assignments that went to e, P_e the mean router probability. Over the
//             batch, not per sequence: a sequence may keep to a few experts (that is what
//             temporal locality asks for) as long as the batch as a whole spreads its load.
//             A per-sequence form was tried first and fought the temporal term: the router
//             collapsed onto two experts per layer for every text.
//   temporal  reuse beyond chance, mean over adjacent valid pairs (t, t+1) of
//             sum_{e in topk(t)} (pbar_e - p_t+1,e), pbar the batch's mean router distribution:
//             the mass token t+1 puts on the experts token t used, measured against what an
//             unrelated token of the batch would put there. 0 for a router that ignores order
//             (a collapsed router included: it sends every token to the same experts, so its
//             reuse is exactly chance); negative when adjacent tokens share experts more than
//             tokens at large do. Two forms were tried first and failed: the squared difference
//             of the distributions (a flat router minimises it while its top-k flips freely) and
//             1 - mass kept (any constant router minimises it; with the balance term it gave
//             either collapsed layers or no locality, see docs/benchmarks.md).
//   lookahead mean over valid t with t+k valid of CE(stopgrad(y_{t+k}), softmax(z_{t,k})), the
//             target y the router's top-k choice at t+k as a distribution (1/k on each chosen
//             expert, `lookahead_target_topk`) or, with lookahead_target router_probs, its
//             softmax. With the top-k target the optimum is each expert's chance of being
//             chosen, whose top-k is the set with the highest expected recall@top-k; the
//             softmax target's optimum is the expected router probability, whose top-k can
//             differ (on `small` the softmax-trained head scored below copying t-1's experts).
//
// Both batch-level terms are linear in per-token sums, so data-parallel training is exact: each
// rank sums its routing_counts with the others (one all-reduce for all layers) and keeps the
// gradient of its own tokens' sums; the mean of the ranks' values and gradients is the value and
// gradient of the one big batch.
#pragma once

#include <torch/torch.h>

namespace chronos {

// Counts of one layer's batch that the batch-level terms need, as one float64 row [routing_count_cols(E)]
// so that ranks can sum every layer with one collective:
//   [0, E)        top-k assignments per expert
//   E             valid tokens
//   [E+1, 2E+1)   adjacent valid pairs (t, t+1) whose token t used expert e
//   2E+1          adjacent valid pairs
//   2E+2          1 (summed over ranks: the world size)
inline int64_t routing_count_cols(int64_t n_experts) { return 2 * n_experts + 3; }
// topk [B, T, k] int64, valid [B, T] bool.
torch::Tensor routing_counts(const torch::Tensor& topk, const torch::Tensor& valid, int64_t n_experts);
// probs [B, T, E], valid [B, T] bool, counts from routing_counts (possibly summed over ranks).
torch::Tensor loss_balance_counted(const torch::Tensor& probs, const torch::Tensor& valid, const torch::Tensor& counts);
// probs [B, T, E], topk [B, T, k] int64 (the experts used), valid [B, T] bool, counts as above.
torch::Tensor loss_temporal_counted(const torch::Tensor& probs, const torch::Tensor& topk, const torch::Tensor& valid,
                                    const torch::Tensor& counts);
// The same two terms with counts from this batch alone.
torch::Tensor loss_balance(const torch::Tensor& probs, const torch::Tensor& topk, const torch::Tensor& valid);
torch::Tensor loss_temporal(const torch::Tensor& probs, const torch::Tensor& topk, const torch::Tensor& valid);
// logits [B, T, E] predicted at t for t+k; target_probs [B, T, E] (the real router, detached
// inside); valid [B, T]; k >= 1.
torch::Tensor loss_lookahead(const torch::Tensor& logits, const torch::Tensor& target_probs, const torch::Tensor& valid, int64_t k);
// topk [B, T, k] int64 -> [B, T, E] of `dtype`: 1/k on each chosen expert, 0 elsewhere.
torch::Tensor lookahead_target_topk(const torch::Tensor& topk, int64_t n_experts, c10::ScalarType dtype);
// Switch rate of one layer: fraction of the top-k set that changes between adjacent valid tokens.
double switch_rate(const torch::Tensor& topk, const torch::Tensor& valid, int64_t n_experts);

}  // namespace chronos
