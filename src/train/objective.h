// objective.h: the Stage 1 (pretraining) objective on one batch:
//   total = CE + lambda_balance * mean_l balance_l + lambda_temporal * mean_l temporal_l
//               + lambda_lookahead * mean_{k,l} lookahead_{k,l}
// Means over layers (and steps) keep each lambda independent of depth. Every term is returned
// separately for logging.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

#include "model/model.h"
#include "data/token_stream.h"
#include "tokenizer/tokenizer.h"

namespace chronos {

struct ObjectiveTerms {
    torch::Tensor total, ce;
    std::vector<torch::Tensor> balance;                  // per layer
    std::vector<torch::Tensor> temporal;                 // per layer
    std::vector<std::vector<torch::Tensor>> lookahead;   // [k-1][layer]
    ForwardOutput out;
};

// The Chronos loss mix of one forward pass over the valid positions (valid [B, T] bool, padding
// excluded), added to `base` (the stage's own loss): base + lambda_balance x mean_l balance_l +
// lambda_temporal x mean_l temporal_l + lambda_lookahead x mean lookahead, with the model's
// lambdas; every term also returned on its own. Every stage trains with it.
struct RoutingTerms {
    torch::Tensor total;
    std::vector<torch::Tensor> balance, temporal;
    std::vector<std::vector<torch::Tensor>> lookahead;
};
RoutingTerms routing_terms(ChronosModel& model, const ForwardOutput& out, const torch::Tensor& valid, const torch::Tensor& base,
                           const std::function<void(torch::Tensor&)>& sum_counts = {});

// ids [B, T + 1]: inputs are ids[:, :T], targets ids[:, 1:]. keep: see ForwardOptions::keep.
// sum_counts, when given, sums the routing counts [L, 2E + 3] of the balance and temporal terms
// over data-parallel ranks in place, so both see the global batch (losses.h).
ObjectiveTerms objective_pretrain(ChronosModel& model, const torch::Tensor& ids, const torch::Tensor& keep = {},
                                  const std::function<void(torch::Tensor&)>& sum_counts = {});

// The lookahead terms [k-1][layer] of a forward pass (empty if the model has no head): CE of
// the head's prediction at t against the stop-gradient router distribution at t+k.
std::vector<std::vector<torch::Tensor>> lookahead_terms(const ForwardOutput& out, const torch::Tensor& valid, const ModelConfig& c);
// Their mean over k and layers, as a differentiable scalar.
torch::Tensor lookahead_total(const std::vector<std::vector<torch::Tensor>>& terms);

// [rows, T + 1] int64 ids of the sampler's global samples first .. first + rows - 1.
torch::Tensor sampler_batch(SequenceSampler& sampler, int64_t first, int64_t rows, int64_t seq_len);

// [rows, T + 1] int64 ids of the consecutive windows first .. first + rows - 1 of `tokens`
// (windows_copy's layout), the one place a held-out int32 stream becomes model input.
torch::Tensor window_ids(const std::vector<int32_t>& tokens, int64_t first, int64_t rows, int64_t seq_len);

// Row-weighted mean of loss(ids [r, T + 1]) over the first `batches` x `rows` held-out windows of
// `tokens`, in order, without gradients (NaN if there is no window).
double held_out_mean(const std::vector<int32_t>& tokens, int64_t seq_len, int64_t rows, int64_t batches,
                     const std::function<double(const torch::Tensor& ids)>& loss);

// lookahead_total of the terms as a double (0 for a model without a head), for logging.
double lookahead_mean(const ObjectiveTerms& terms);

// Mean of a vector of scalars as a double (0 for an empty vector).
double terms_mean(const std::vector<torch::Tensor>& terms);

// Model FLOPs per trained token (forward + backward = 3x forward): 2 x active matmul weights
// (attention projections, router, k routed + shared experts, lm_head) plus attention scores
// and values over an average causal context of seq_len / 2 (or the window), plus the lookahead
// head (whose inputs are detached, so it has no input gradient into the model).
double model_flops_per_token(const ModelConfig& c, int64_t seq_len);

}  // namespace chronos
