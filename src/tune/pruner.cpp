// pruner.cpp: the median pruner (pruner.h).
#include "tune/pruner.h"

#include <algorithm>
#include <cmath>

namespace chronos::tune {

bool pruner_should_prune(const PrunerOptions& o, const std::vector<Trial>& history, const std::map<int64_t, double>& current, int64_t step,
                         PruneDetail* detail) {
    if (!o.enabled) return false;
    const auto it = current.find(step);
    if (it == current.end()) return false;
    if (!std::isfinite(it->second)) {
        if (detail) *detail = {it->second, std::nan(""), 0};
        return true;
    }
    int64_t complete = 0;
    std::vector<double> at_step;
    for (const auto& t : history) {
        if (t.state != TrialState::complete) continue;
        ++complete;
        const auto v = t.intermediate.find(step);
        if (v != t.intermediate.end() && std::isfinite(v->second)) at_step.push_back(v->second);
    }
    if (complete < o.n_startup_trials || step < o.n_warmup_steps || at_step.empty()) return false;
    double best = it->second;
    for (const auto& [s, v] : current) {
        if (s <= step && std::isfinite(v)) best = std::min(best, v);
    }
    std::sort(at_step.begin(), at_step.end());
    const size_t n = at_step.size();
    const double median = n % 2 ? at_step[n / 2] : 0.5 * (at_step[n / 2 - 1] + at_step[n / 2]);
    if (detail) *detail = {best, median, static_cast<int64_t>(n)};
    return best > median;
}

}  // namespace chronos::tune
