// pruner.h: the median pruner (as Optuna's MedianPruner): a trial stops when its best
// intermediate value so far (the objective on held-out data as training reports it, lower is
// better) is worse than the median of the complete trials' values at the same step.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "tune/search_space.h"
#include "tune/trial.h"

namespace chronos::tune {

// Whether the trial with intermediate values `current` (step -> value, lower is better) should
// stop after reporting `step`: never before o.n_startup_trials trials completed, below step
// o.n_warmup_steps, or when no complete trial reported this step; a non-finite value stops it.
// With `detail`, a decision to prune also says what it compared.
struct PruneDetail {
    double best = 0, median = 0;  // the trial's best value so far, the complete trials' median
    int64_t trials = 0;           // complete trials that reported this step (0: the value was not finite)
};
bool pruner_should_prune(const PrunerOptions& o, const std::vector<Trial>& history, const std::map<int64_t, double>& current, int64_t step,
                         PruneDetail* detail = nullptr);

}  // namespace chronos::tune
