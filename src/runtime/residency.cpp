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
      layer_prev_(static_cast<size_t>(layers), -3),
      cell_at_(static_cast<size_t>(layers * experts), -1) {
    CHRONOS_ASSERT(layers > 0 && experts > 0, "a residency policy needs layers and experts");
}

size_t Residency::cell(int32_t pair) const {
    const size_t p = static_cast<size_t>(pair);
    const float sc = std::clamp(score_[p], 0.0f, 1.0f);
    const size_t sb = std::min(static_cast<size_t>(sc * kScores), static_cast<size_t>(kScores - 1));
    const size_t rb = in_latest_routing(pair) ? static_cast<size_t>(std::clamp(run_[p], 1, kRuns)) : 0;
    return sb * (kRuns + 1) + rb;
}

// Before the layer's routing at a new step: the routing of the previous snapshot is now known,
// so each of the layer's pairs adds one observation to the cell it was in; then the cells are
// taken again for the routing about to happen.
void Residency::learn_layer(int64_t layer) {
    const int64_t last = layer_step_[static_cast<size_t>(layer)];
    for (int64_t e = 0; e < E_; ++e) {
        const size_t p = static_cast<size_t>(layer * E_ + e);
        const int32_t c = cell_at_[p];
        if (c >= 0) {
            seen_[static_cast<size_t>(c)] += 1;
            if (used_step_[p] == last) stayed_[static_cast<size_t>(c)] += 1;
        }
    }
}

void Residency::snapshot_layer(int64_t layer) {
    for (int64_t e = 0; e < E_; ++e) {
        const int32_t pair = static_cast<int32_t>(layer * E_ + e);
        cell_at_[static_cast<size_t>(pair)] = static_cast<int32_t>(cell(pair));
    }
}

void Residency::at(int64_t step, int64_t layer) {
    step_ = step;
    layer_ = layer;
    int64_t& last = layer_step_[static_cast<size_t>(layer)];
    if (last != step) {
        if (kind_ == Kind::chronos) {
            if (last >= 0) learn_layer(layer);
            snapshot_layer(layer);  // in_latest_routing still refers to `last` here
        }
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

bool Residency::in_recent_routing(int32_t pair) const {
    const int64_t u = used_step_[static_cast<size_t>(pair)], l = static_cast<int64_t>(pair / E_);
    return u >= 0 && (u == layer_step_[static_cast<size_t>(l)] || u == layer_prev_[static_cast<size_t>(l)]);
}

float Residency::expectation(int32_t pair) const {
    // Two pseudo-observations at the cell's prior (the predictors' score, raised to reuse_prior
    // for a pair in its layer's latest routing): the estimate starts there and follows what the
    // routing does.
    const size_t c = cell(pair);
    const size_t sb = c / (kRuns + 1), rb = c % (kRuns + 1);
    // Expected nowhere: 0, so that among such pairs recency decides (LRU), which knows more
    // about them than one probability shared by all.
    if (sb == 0 && rb == 0) return 0.0f;
    const double mid = (static_cast<double>(sb) + 0.5) / kScores;
    const double prior = rb > 0 ? std::max(mid, static_cast<double>(reuse_prior_)) : mid;
    return static_cast<float>((stayed_[c] + 2.0 * prior) / (seen_[c] + 2.0));
}

float Residency::score(int32_t pair) const {
    if (kind_ == Kind::lru) return 0.0f;
    const float s = score_[static_cast<size_t>(pair)];
    return in_recent_routing(pair) ? std::max(s, reuse_prior_) : s;
}

int64_t Residency::layers_until_needed(int32_t pair) const {
    const int64_t d = ((pair / E_) - layer_ + L_) % L_;
    return d == 0 ? L_ : d;
}

bool Residency::evict_before(int32_t a, int32_t b) const {
    if (kind_ == Kind::chronos) {
        // The lowest expectation per layer until needed goes first: ka * db < kb * da compares
        // ka / da with kb / db.
        const double ka = expectation(a), kb = expectation(b);
        const double va = ka * static_cast<double>(layers_until_needed(b)), vb = kb * static_cast<double>(layers_until_needed(a));
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
