// tpe.h: the Tree-structured Parzen Estimator (Bergstra et al., "Algorithms for
// Hyper-Parameter Optimization", 2011), univariate, with the defaults Optuna documents for its
// TPESampler: 10 random startup trials, gamma(n) = min(ceil(0.1 n), 25) trials in the "good"
// group, 24 expected-improvement candidates, a prior component of weight 1 at the middle of the
// range with the range's width, magic clip of the bandwidths, and weights that ramp down the
// oldest trials once there are more than 25. docs/tune.md describes the estimator.
//
//     std::mt19937_64 rng(seed);
//     nlohmann::json params = chronos::tune::tpe_sample(space, history, rng);
#pragma once

#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "tune/search_space.h"
#include "tune/trial.h"

namespace chronos::tune {

// Uniform sampling (log-uniform on log parameters), conditions respected: the random-search
// baseline and TPE's startup trials.
nlohmann::json random_sample(const SearchSpace& s, std::mt19937_64& rng);
nlohmann::json random_value(const Param& p, std::mt19937_64& rng);

// The base config's own values (pretrain spaces): the study's first trial, so that what it
// finds is measured against the starting point on the same data. A parameter the base config
// lacks, or whose value lies outside the space, is drawn at random.
nlohmann::json base_sample(const SearchSpace& s, std::mt19937_64& rng);

// One new point: random while fewer than tpe.n_startup_trials trials are complete or pruned;
// then, per parameter, the candidate among n_ei_candidates draws from l(x) (the good trials'
// density) with the largest l(x) / g(x) (g: the others'). Complete trials rank by value,
// pruned ones after them (the later the step they reached, the better); failed ones are ignored.
nlohmann::json tpe_sample(const SearchSpace& s, const std::vector<Trial>& history, std::mt19937_64& rng);

// The number of trials in the good group out of n: min(ceil(0.1 n), 25).
int64_t tpe_gamma(int64_t n);
// Weights of n observations, oldest first: 1 each up to 25, then a ramp from 1/n for the
// oldest n - 25 and 1 for the newest 25.
std::vector<double> tpe_weights(int64_t n);

// A one-dimensional Parzen estimator: a mixture of normals truncated to [low, high] (in log
// space for log parameters; integers by the mass of [x - 1/2, x + 1/2]), or for categorical
// parameters a weighted histogram with a uniform prior. Exposed for tests.
struct ParzenEstimator {
    ParamType type = ParamType::float_;
    double low = 0, high = 0;   // the transformed range (log space, and +-1/2 for integers)
    bool log = false;
    std::vector<double> weights, mus, sigmas;  // numeric components (weights sum to 1)
    std::vector<double> probs;                  // categorical: probability of each choice
};
ParzenEstimator parzen_build(const Param& p, const std::vector<double>& observations, const std::vector<double>& weights,
                             const TpeOptions& o);
// Draws in the parameter's own space (a value, or a choice's index for categorical ones).
double parzen_sample(const ParzenEstimator& e, std::mt19937_64& rng);
double parzen_log_pdf(const ParzenEstimator& e, double x);

}  // namespace chronos::tune
