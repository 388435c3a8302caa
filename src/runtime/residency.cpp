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
      used_step_(static_cast<size_t>(layers * experts), kNever),
      run_(static_cast<size_t>(layers * experts), 0),
      rank_(static_cast<size_t>(layers * experts), 0),
      layer_step_(static_cast<size_t>(layers), kNoStep),
      layer_prev_(static_cast<size_t>(layers), kNoStepBefore),
      cell_at_(static_cast<size_t>(layers * experts), -1),
      share_(static_cast<size_t>(layers * experts), 0.0f),
      share_mean_(static_cast<size_t>(layers), 0.0) {
    CHRONOS_ASSERT(layers > 0 && experts > 0, "a residency policy needs layers and experts");
}

// The pair's share against its layer's mean (the layer's choices per routing / E), in buckets
// of a quarter below the mean, a half up to twice it, one above.
size_t Residency::share_bucket(int32_t pair) const {
    const double mean = share_mean_[static_cast<size_t>(pair / E_)];
    const double r = mean > 0 ? share_[static_cast<size_t>(pair)] / mean : 1.0;
    static constexpr double kUpper[kShares - 1] = {0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0};
    size_t b = 0;
    while (b < kShares - 1 && r >= kUpper[b]) ++b;
    return b;
}

size_t Residency::cell(int32_t pair) const {
    const size_t p = static_cast<size_t>(pair);
    const float sc = std::clamp(score_[p], 0.0f, 1.0f);
    const size_t sb = std::min(static_cast<size_t>(sc * kScores), static_cast<size_t>(kScores - 1));
    size_t hb = 0;  // never chosen
    if (in_latest_routing(pair)) {
        hb = static_cast<size_t>(1 + (std::clamp(run_[p], 1, kRuns) - 1) * kRanks + std::clamp(rank_[p], 0, kRanks - 1));
    } else if (used_step_[p] != kNever) {
        const int64_t gap = layer_step_[static_cast<size_t>(pair / E_)] - used_step_[p];  // routings since: >= 1
        hb = static_cast<size_t>(kRuns * kRanks + std::clamp<int64_t>(gap, 1, kGaps));
    }
    return (sb * kHistory + hb) * kShares + share_bucket(pair);
}

// Before the layer's routing at a new step: the routing of the previous snapshot is now known,
// so each of the layer's pairs adds one observation to the cell it was in; then the cells are
// taken again for the routing about to happen.
void Residency::learn_layer(int64_t layer) {
    const int64_t last = layer_step_[static_cast<size_t>(layer)];
    double sum = 0;
    for (int64_t e = 0; e < E_; ++e) {
        const size_t p = static_cast<size_t>(layer * E_ + e);
        const int32_t c = cell_at_[p];
        const bool chosen = used_step_[p] == last;
        if (c >= 0) {
            seen_[static_cast<size_t>(c)] += 1;
            if (chosen) stayed_[static_cast<size_t>(c)] += 1;
        }
        share_[p] += kShareRate * ((chosen ? 1.0f : 0.0f) - share_[p]);
        sum += share_[p];
    }
    share_mean_[static_cast<size_t>(layer)] = sum / static_cast<double>(E_);
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
            if (last != kNoStep) learn_layer(layer);
            snapshot_layer(layer);  // in_latest_routing still refers to `last` here
        }
        layer_prev_[static_cast<size_t>(layer)] = last;
        last = step;
    }
}

void Residency::begin_sequence() {
    step_ = 0;
    layer_ = 0;
    std::fill(score_.begin(), score_.end(), 0.0f);
    std::fill(used_step_.begin(), used_step_.end(), kNever);
    std::fill(run_.begin(), run_.end(), 0);
    std::fill(layer_step_.begin(), layer_step_.end(), kNoStep);
    std::fill(layer_prev_.begin(), layer_prev_.end(), kNoStepBefore);
    std::fill(cell_at_.begin(), cell_at_.end(), -1);
}

void Residency::use(int32_t pair, int32_t rank) {
    const size_t p = static_cast<size_t>(pair);
    last_use_[p] = ++clock_;
    if (used_step_[p] == step_) {  // a batch (the prompt) chose it more than once
        rank_[p] = std::min(rank_[p], rank);
        return;
    }
    rank_[p] = rank;
    const int64_t prev = layer_prev_[static_cast<size_t>(pair / E_)];
    run_[p] = used_step_[p] != kNever && used_step_[p] == prev && prev == step_ - 1 ? run_[p] + 1 : 1;
    used_step_[p] = step_;
}

void Residency::use_prompt(int32_t pair, int32_t gap, int32_t run, int32_t rank) {
    CHRONOS_ASSERT(gap >= 0 && run >= 1, "a prompt's pair needs gap >= 0 and run >= 1");
    const size_t p = static_cast<size_t>(pair);
    const int64_t at = step_ - gap;
    // Another sequence of the session may have chosen it more recently: that use stands.
    if (used_step_[p] != kNever && used_step_[p] >= at) {
        if (used_step_[p] == at) rank_[p] = std::min(rank_[p], rank);
        return;
    }
    last_use_[p] = ++clock_;
    used_step_[p] = at;
    run_[p] = run;
    rank_[p] = rank;
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
    return u != kNever && (u == layer_step_[static_cast<size_t>(l)] || u == layer_prev_[static_cast<size_t>(l)]);
}

float Residency::expectation(int32_t pair) const {
    // Two pseudo-observations at the cell's prior (the predictors' score, raised to reuse_prior
    // for a pair in its layer's latest routing): the estimate starts there and follows what the
    // routing does.
    const size_t c = cell(pair);
    const size_t sb = c / kShares / kHistory, hb = c / kShares % kHistory;
    // Never chosen and not expected: 0, so that among such pairs recency decides (LRU), which
    // knows more about them than one probability shared by all.
    if (sb == 0 && hb == 0) return 0.0f;
    const double mid = (static_cast<double>(sb) + 0.5) / kScores;
    const bool latest = hb >= 1 && hb <= static_cast<size_t>(kRuns * kRanks);
    const double prior = latest ? std::max(mid, static_cast<double>(reuse_prior_)) : mid;
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
