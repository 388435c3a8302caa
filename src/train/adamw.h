// adamw.h: AdamW over named parameters, with state addressable by name so that it can be
// saved next to the checkpoint (optimizer.safetensors) and restored bit for bit.
//
// Decay groups: matrices (dim >= 2) decay, norm weights (dim 1) do not.
// Schedule: linear warmup to lr, then cosine to lr * min_lr_ratio at `total_steps`.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "format/safetensors.h"

namespace chronos {

struct AdamWOptions {
    double lr = 3e-3, min_lr_ratio = 0.1;
    int64_t warmup_steps = 50, total_steps = 1000;
    double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
};

double lr_at(const AdamWOptions& o, int64_t step);

class AdamW {
public:
    AdamW(const std::vector<std::pair<std::string, torch::Tensor>>& params, const AdamWOptions& options);
    // One update with the gradients held in the parameters; returns the learning rate used.
    double step();
    int64_t steps_done() const { return step_; }
    void save(const std::string& path) const;
    // Restores the moments and the step count; throws if names or shapes differ.
    void load(const std::string& path);

private:
    struct Slot {
        std::string name;
        torch::Tensor param, m, v;
        bool decay;
    };
    std::vector<Slot> slots_;
    AdamWOptions o_;
    int64_t step_ = 0;
};

}  // namespace chronos
