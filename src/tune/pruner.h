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
bool pruner_should_prune(const PrunerOptions& o, const std::vector<Trial>& history, const std::map<int64_t, double>& current, int64_t step);

}  // namespace chronos::tune
