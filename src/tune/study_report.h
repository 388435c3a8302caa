// study_report.h: what a study found: the best trial, the Pareto front of the objective's
// metrics, parameter importances, and the table `chronos tune --show` prints.
#pragma once

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "tune/search_space.h"
#include "tune/trial.h"

namespace chronos::tune {

// The complete trial with the lowest objective value; nullptr when none completed.
const Trial* report_best(const std::vector<Trial>& trials);

// Numbers of the complete trials no other complete trial dominates on the objective's metrics
// (each in its own direction): better or equal on every metric and better on one.
std::vector<int64_t> report_pareto(const SearchSpace& s, const std::vector<Trial>& trials);

// Importance of each parameter: epsilon-squared of the objective value grouped by the
// parameter (choices, or equal-count bins of ~sqrt(n) trials for numbers) over the complete
// trials where it is active, (SS_between - (k - 1) MS_within) / SS_total, floored at 0 so that
// a parameter unrelated to the value scores ~0 rather than (k - 1) / (n - 1); then scaled to
// sum to 1. A one-parameter-at-a-time measure: interactions are not credited. Fewer than 4
// trials: every importance 0.
std::vector<std::pair<std::string, double>> report_importance(const SearchSpace& s, const std::vector<Trial>& trials);

void report_print(const SearchSpace& s, const std::vector<Trial>& trials, std::FILE* out);

}  // namespace chronos::tune
