// train_step.h: the gradient of one Stage 1 optimizer step, as every rank computes it.
//
// Rank r of `world` takes rows r * B/world .. (r+1) * B/world - 1 of global batch `step`
// (samples step * B .. step * B + B - 1 of the stateless sampler), runs them as grad_accum
// micro-batches, and the gradients are averaged over ranks in one all-reduce. The fallback mask
// is drawn for the whole global batch from (seed, step) and each rank takes its rows, and the
// routing counts of the balance and temporal terms are summed over ranks, so N ranks compute
// what one process computes with the combined batch. The trainer calls this once per step; the
// data-parallel tests call it from several threads, in float64.
//
//     chronos::DistributedGroup group(rank, world, "file:/tmp/rdzv");
//     torch::Tensor m = chronos::train_step_gradient(model, sampler, hyper, step, group);
//     // every parameter's .grad() now holds the step's mean gradient, on every rank
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "model/model.h"
#include "data/token_stream.h"
#include "train/distributed.h"
#include "train/train_api.h"

namespace chronos {

// Leaves the step's gradient, averaged over ranks, in each parameter's .grad() (zeros where a
// parameter got none) and returns the step's metrics [ce, total, balance, temporal, lookahead]
// (float64, averaged over micro-batches and ranks). hyper.batch_size must be divisible by
// world x grad_accum.
torch::Tensor train_step_gradient(ChronosModel& model, SequenceSampler& sampler, const TrainHyper& hyper, int64_t step,
                                  DistributedGroup& group);

}  // namespace chronos
