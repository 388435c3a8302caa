// tpe.cpp: the TPE sampler and its Parzen estimators (tpe.h).
#include "tune/tpe.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"

namespace chronos::tune {

using json = nlohmann::json;

namespace {

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

double to_space(const Param& p, double x) { return p.log ? std::log(x) : x; }

// The estimator's range for p: integers own [x - 1/2, x + 1/2], so the range widens by 1/2.
std::pair<double, double> space_range(const Param& p) {
    const double half = p.type == ParamType::int_ ? 0.5 : 0.0;
    return {to_space(p, p.low - half), to_space(p, p.high + half)};
}

// A value as the parameter stores it (int64 for int, double for float, the choice itself).
json param_value(const Param& p, double x) {
    if (p.type == ParamType::categorical) return p.choices[static_cast<size_t>(x)];
    if (p.type == ParamType::int_) return static_cast<int64_t>(x);
    return x;
}

// The estimator's coordinate of a stored value: a choice's index, or the number.
double param_coordinate(const Param& p, const json& v) {
    if (p.type != ParamType::categorical) return v.get<double>();
    for (size_t i = 0; i < p.choices.size(); ++i) {
        if (p.choices[i] == v) return static_cast<double>(i);
    }
    return -1;  // a value the space no longer offers
}

// Component i's mass on [a, b] (in the estimator's space), relative to its mass on the range.
double component_mass(const ParzenEstimator& e, size_t i, double a, double b) {
    const double mu = e.mus[i], s = e.sigmas[i];
    const double z = normal_cdf((e.high - mu) / s) - normal_cdf((e.low - mu) / s);
    return (normal_cdf((b - mu) / s) - normal_cdf((a - mu) / s)) / std::max(z, 1e-300);
}

}  // namespace

int64_t tpe_gamma(int64_t n) { return std::min<int64_t>(static_cast<int64_t>(std::ceil(0.1 * static_cast<double>(n))), 25); }

std::vector<double> tpe_weights(int64_t n) {
    std::vector<double> w(static_cast<size_t>(n), 1.0);
    if (n <= 25) return w;
    const int64_t ramp = n - 25;  // linspace(1/n, 1, ramp)
    for (int64_t i = 0; i < ramp; ++i) {
        const double lo = 1.0 / static_cast<double>(n);
        w[static_cast<size_t>(i)] = ramp == 1 ? lo : lo + (1.0 - lo) * static_cast<double>(i) / static_cast<double>(ramp - 1);
    }
    return w;
}

ParzenEstimator parzen_build(const Param& p, const std::vector<double>& obs, const std::vector<double>& obs_weights, const TpeOptions& o) {
    CHRONOS_ASSERT(obs.size() == obs_weights.size(), "one weight per observation");
    ParzenEstimator e;
    e.type = p.type;
    e.log = p.log;
    if (p.type == ParamType::categorical) {
        const size_t n = p.choices.size();
        e.probs.assign(n, o.prior_weight / static_cast<double>(n));
        for (size_t i = 0; i < obs.size(); ++i) e.probs[static_cast<size_t>(obs[i])] += obs_weights[i];
        const double total = std::accumulate(e.probs.begin(), e.probs.end(), 0.0);
        for (double& q : e.probs) q /= total;
        return e;
    }
    std::tie(e.low, e.high) = space_range(p);
    const double width = e.high - e.low;
    // Components: one per observation, and the prior at the middle of the range (last).
    std::vector<double> mus;
    for (double x : obs) mus.push_back(to_space(p, x));
    mus.push_back(0.5 * (e.low + e.high));
    const size_t m = mus.size();
    std::vector<size_t> order(m);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return mus[a] < mus[b]; });
    // Bandwidth: the larger gap to a sorted neighbour, the range's ends counting as neighbours;
    // without consider_endpoints the outermost use their inner gap only.
    std::vector<double> sorted(m + 2);
    sorted[0] = e.low;
    sorted[m + 1] = e.high;
    for (size_t i = 0; i < m; ++i) sorted[i + 1] = mus[order[i]];
    std::vector<double> sig_sorted(m);
    for (size_t i = 0; i < m; ++i) sig_sorted[i] = std::max(sorted[i + 1] - sorted[i], sorted[i + 2] - sorted[i + 1]);
    if (!o.consider_endpoints && m >= 2) {
        sig_sorted[0] = sorted[2] - sorted[1];
        sig_sorted[m - 1] = sorted[m] - sorted[m - 1];
    }
    const double max_sigma = width;
    const double min_sigma = o.consider_magic_clip ? width / std::min(100.0, 1.0 + static_cast<double>(m)) : 1e-12;
    e.sigmas.assign(m, 0);
    for (size_t i = 0; i < m; ++i) e.sigmas[order[i]] = std::clamp(sig_sorted[i], min_sigma, max_sigma);
    e.sigmas[m - 1] = width;  // the prior keeps the range's width
    e.mus = mus;
    e.weights = obs_weights;
    e.weights.push_back(o.prior_weight);
    const double total = std::accumulate(e.weights.begin(), e.weights.end(), 0.0);
    for (double& w : e.weights) w /= total;
    return e;
}

double parzen_sample(const ParzenEstimator& e, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u01(0.0, 1.0);
    if (e.type == ParamType::categorical) {
        std::discrete_distribution<size_t> pick(e.probs.begin(), e.probs.end());
        return static_cast<double>(pick(rng));
    }
    std::discrete_distribution<size_t> pick(e.weights.begin(), e.weights.end());
    const size_t i = pick(rng);
    // Truncated normal by rejection: every centre lies in the range and no bandwidth exceeds
    // its width, so a draw lands inside with probability >= Phi(1) - Phi(0) ~ 0.34.
    std::normal_distribution<double> normal(e.mus[i], e.sigmas[i]);
    double z = normal(rng);
    for (int tries = 0; (z < e.low || z > e.high) && tries < 1000; ++tries) z = normal(rng);
    z = std::clamp(z, e.low, e.high);
    double x = e.log ? std::exp(z) : z;
    if (e.type == ParamType::int_) {
        const double lo = std::ceil(e.log ? std::exp(e.low) : e.low), hi = std::floor(e.log ? std::exp(e.high) : e.high);
        x = std::clamp(std::round(x), lo, hi);
    }
    return x;
}

double parzen_log_pdf(const ParzenEstimator& e, double x) {
    if (e.type == ParamType::categorical) return std::log(e.probs[static_cast<size_t>(x)]);
    if (e.type == ParamType::int_) {
        const double a = e.log ? std::log(x - 0.5) : x - 0.5, b = e.log ? std::log(x + 0.5) : x + 0.5;
        double mass = 0;
        for (size_t i = 0; i < e.mus.size(); ++i) mass += e.weights[i] * component_mass(e, i, std::max(a, e.low), std::min(b, e.high));
        return std::log(std::max(mass, 1e-300));
    }
    // Continuous: log of sum_i w_i N(z; mu_i, s_i) / Z_i, by log-sum-exp. The log-space Jacobian
    // is the same for l and g and cancels in the ratio, so it is left out.
    const double z = e.log ? std::log(x) : x;
    std::vector<double> terms(e.mus.size());
    double top = -std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < e.mus.size(); ++i) {
        const double mu = e.mus[i], s = e.sigmas[i];
        const double mass = normal_cdf((e.high - mu) / s) - normal_cdf((e.low - mu) / s);
        const double d = (z - mu) / s;
        terms[i] = std::log(e.weights[i]) - 0.5 * d * d - std::log(s * std::sqrt(2 * M_PI)) - std::log(std::max(mass, 1e-300));
        top = std::max(top, terms[i]);
    }
    double sum = 0;
    for (double t : terms) sum += std::exp(t - top);
    return top + std::log(sum);
}

json random_value(const Param& p, std::mt19937_64& rng) {
    if (p.type == ParamType::categorical) return p.choices[std::uniform_int_distribution<size_t>(0, p.choices.size() - 1)(rng)];
    if (p.type == ParamType::int_ && !p.log) {
        return std::uniform_int_distribution<int64_t>(static_cast<int64_t>(p.low), static_cast<int64_t>(p.high))(rng);
    }
    const auto [lo, hi] = space_range(p);
    const double z = lo + (hi - lo) * std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    double x = p.log ? std::exp(z) : z;
    if (p.type == ParamType::int_) x = std::round(x);
    return param_value(p, std::clamp(x, p.low, p.high));
}

json random_sample(const SearchSpace& s, std::mt19937_64& rng) {
    json chosen = json::object();
    for (const auto& p : s.params) {
        if (param_active(p, chosen)) chosen[p.name] = random_value(p, rng);
    }
    return chosen;
}

json base_sample(const SearchSpace& s, std::mt19937_64& rng) {
    json chosen = json::object();
    for (const auto& p : s.params) {
        if (!param_active(p, chosen)) continue;
        const auto dot = p.name.find('.');
        const std::string section = p.name.substr(0, dot), field = p.name.substr(dot + 1);
        const json* v = nullptr;
        if ((section == "model" || section == "train") && s.base.contains(section) && s.base[section].contains(field)) {
            v = &s.base[section][field];
        }
        bool valid = v != nullptr;
        if (valid && p.type == ParamType::categorical) {
            valid = std::find(p.choices.begin(), p.choices.end(), *v) != p.choices.end();
        } else if (valid) {
            valid = v->is_number() && v->get<double>() >= p.low && v->get<double>() <= p.high &&
                    (p.type != ParamType::int_ || v->get<double>() == std::floor(v->get<double>()));
        }
        if (!valid) {
            chosen[p.name] = random_value(p, rng);
        } else {
            chosen[p.name] = p.type == ParamType::int_ ? json(v->get<int64_t>()) : p.type == ParamType::float_ ? json(v->get<double>()) : *v;
        }
    }
    return chosen;
}

json tpe_sample(const SearchSpace& s, const std::vector<Trial>& history, std::mt19937_64& rng) {
    std::vector<const Trial*> complete, pruned;
    for (const auto& t : history) {
        if (t.state == TrialState::complete && std::isfinite(t.value)) complete.push_back(&t);
        if (t.state == TrialState::pruned) pruned.push_back(&t);
    }
    const int64_t n = static_cast<int64_t>(complete.size() + pruned.size());
    if (n < s.tpe.n_startup_trials || n == 0) return random_sample(s, rng);

    std::stable_sort(complete.begin(), complete.end(), [](const Trial* a, const Trial* b) { return a->value < b->value; });
    auto last = [](const Trial* t) -> std::pair<int64_t, double> {
        if (t->intermediate.empty()) return {-1, 0.0};
        return {t->intermediate.rbegin()->first, t->intermediate.rbegin()->second};
    };
    std::stable_sort(pruned.begin(), pruned.end(), [&](const Trial* a, const Trial* b) {
        const auto la = last(a), lb = last(b);
        return la.first != lb.first ? la.first > lb.first : la.second < lb.second;
    });
    std::vector<const Trial*> ranked = complete;
    ranked.insert(ranked.end(), pruned.begin(), pruned.end());
    const size_t n_below = static_cast<size_t>(tpe_gamma(n));
    std::vector<const Trial*> below(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(n_below));
    std::vector<const Trial*> above(ranked.begin() + static_cast<std::ptrdiff_t>(n_below), ranked.end());
    auto by_number = [](const Trial* a, const Trial* b) { return a->number < b->number; };
    std::sort(below.begin(), below.end(), by_number);  // oldest first: the weights ramp by age
    std::sort(above.begin(), above.end(), by_number);

    json chosen = json::object();
    for (const auto& p : s.params) {
        if (!param_active(p, chosen)) continue;
        auto observations = [&](const std::vector<const Trial*>& group) {
            std::vector<double> xs;
            for (const Trial* t : group) {
                if (!t->params.contains(p.name)) continue;  // inactive in that trial
                const double x = param_coordinate(p, t->params[p.name]);
                const bool offered = p.type == ParamType::categorical ? x >= 0 : x >= p.low && x <= p.high;
                if (!offered) continue;  // a value the space no longer offers
                xs.push_back(x);
            }
            return xs;
        };
        const std::vector<double> xb = observations(below), xa = observations(above);
        const ParzenEstimator l = parzen_build(p, xb, tpe_weights(static_cast<int64_t>(xb.size())), s.tpe);
        const ParzenEstimator g = parzen_build(p, xa, tpe_weights(static_cast<int64_t>(xa.size())), s.tpe);
        double best = 0, best_score = -std::numeric_limits<double>::infinity();
        for (int64_t c = 0; c < s.tpe.n_ei_candidates; ++c) {
            const double x = parzen_sample(l, rng);
            const double score = parzen_log_pdf(l, x) - parzen_log_pdf(g, x);
            if (score > best_score) {
                best_score = score;
                best = x;
            }
        }
        chosen[p.name] = param_value(p, best);
    }
    return chosen;
}

}  // namespace chronos::tune
