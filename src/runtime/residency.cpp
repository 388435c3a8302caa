// residency.cpp: see residency.h.
#include "runtime/residency.h"

#include <algorithm>

#include "core/error.h"

namespace chronos::rt {

Residency::Residency(int64_t layers, int64_t experts, Kind kind, float reuse_prior)
    : L_(layers),
      E_(experts),
      kind_(kind),
      reuse_prior_(reuse_prior),
      score_(static_cast<size_t>(layers * experts), 0.0f),
      last_use_(static_cast<size_t>(layers * experts), 0),
      used_step_(static_cast<size_t>(layers * experts), -1),
      run_(static_cast<size_t>(layers * experts), 0),
      layer_step_(static_cast<size_t>(layers), -2),
      layer_prev_(static_cast<size_t>(layers), -3) {
    CHRONOS_ASSERT(layers > 0 && experts > 0, "a residency policy needs layers and experts");
}

void Residency::learn_layer(int64_t layer) {
    const int64_t last = layer_step_[static_cast<size_t>(layer)], prev = layer_prev_[static_cast<size_t>(layer)];
    if (prev < 0 || last != prev + 1) return;  // not two consecutive routings of this layer
    for (int64_t e = 0; e < E_; ++e) {
        const size_t p = static_cast<size_t>(layer * E_ + e);
        if (used_step_[p] == prev) {  // chosen at prev, not at last: it left after run_ tokens
            seen_[static_cast<size_t>(std::min(run_[p], kRuns) - 1)] += 1;
        } else if (used_step_[p] == last && run_[p] >= 2) {  // it stayed after run_ - 1 tokens
            const size_t b = static_cast<size_t>(std::min(run_[p] - 1, kRuns) - 1);
            seen_[b] += 1;
            stayed_[b] += 1;
        }
    }
}

void Residency::at(int64_t step, int64_t layer) {
    step_ = step;
    layer_ = layer;
    int64_t& last = layer_step_[static_cast<size_t>(layer)];
    if (last != step) {
        if (kind_ == Kind::chronos) learn_layer(layer);
        layer_prev_[static_cast<size_t>(layer)] = last;
        last = step;
    }
}

void Residency::use(int32_t pair) {
    const size_t p = static_cast<size_t>(pair);
    last_use_[p] = ++clock_;
    if (used_step_[p] == step_) return;  // a batch (the prompt) chose it more than once
    const int64_t prev = layer_prev_[static_cast<size_t>(pair / E_)];
    run_[p] = used_step_[p] >= 0 && used_step_[p] == prev && prev == step_ - 1 ? run_[p] + 1 : 1;
    used_step_[p] = step_;
}

void Residency::raise_score(int32_t pair, float score) {
    float& s = score_[static_cast<size_t>(pair)];
    s = std::max(s, score);
}

bool Residency::in_latest_routing(int32_t pair) const {
    return used_step_[static_cast<size_t>(pair)] == layer_step_[static_cast<size_t>(pair / E_)];
}

float Residency::reuse_estimate(int32_t run) const {
    // Two pseudo-observations at the prior: the estimate starts at reuse_prior and follows the
    // routing as it is seen.
    const size_t b = static_cast<size_t>(std::clamp(run, 1, kRuns) - 1);
    return static_cast<float>((stayed_[b] + 2.0 * reuse_prior_) / (seen_[b] + 2.0));
}

float Residency::score(int32_t pair) const {
    if (kind_ == Kind::lru) return 0.0f;
    const float s = score_[static_cast<size_t>(pair)];
    return in_latest_routing(pair) ? std::max(s, reuse_estimate(run_[static_cast<size_t>(pair)])) : s;
}

int64_t Residency::layers_until_needed(int32_t pair) const {
    const int64_t d = ((pair / E_) - layer_ + L_) % L_;
    return d == 0 ? L_ : d;
}

bool Residency::evict_before(int32_t a, int32_t b) const {
    if (kind_ == Kind::chronos) {
        // Lowest score per layer until needed goes first: a*db < b*da compares sa/da with sb/db.
        const double va = static_cast<double>(score(a)) * static_cast<double>(layers_until_needed(b));
        const double vb = static_cast<double>(score(b)) * static_cast<double>(layers_until_needed(a));
        if (va != vb) return va < vb;
    }
    return last_use_[static_cast<size_t>(a)] < last_use_[static_cast<size_t>(b)];
}

int Residency::victim(const int32_t* pairs, int n, float below) const {
    int best = -1;
    for (int i = 0; i < n; ++i) {
        if (!(score(pairs[i]) < below)) continue;
        if (best < 0 || evict_before(pairs[i], pairs[best])) best = i;
    }
    return best;
}

}  // namespace chronos::rt
