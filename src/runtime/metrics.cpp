// metrics.cpp: see metrics.h.
#include "runtime/metrics.h"

#include <algorithm>
#include <cmath>

namespace chronos::rt {

void SlackHistogram::add(double ms) {
    const double at = std::floor((ms + kRangeMs) / kBinMs);
    const double last = static_cast<double>(bins.size() - 1);
    bins[static_cast<size_t>(std::clamp(at, 0.0, last))] += 1;
    n += 1;
    sum_ms += ms;
}

double SlackHistogram::mean_ms() const { return n > 0 ? sum_ms / static_cast<double>(n) : 0.0; }

double SlackHistogram::quantile_ms(double q) const {
    if (n == 0) return 0.0;
    // The smallest bin whose cumulative count reaches q * n (at least one sample).
    const double want = std::max(1.0, std::ceil(q * static_cast<double>(n)));
    double seen = 0;
    for (size_t i = 0; i < bins.size(); ++i) {
        seen += bins[i];
        if (seen >= want) return static_cast<double>(i) * kBinMs - kRangeMs;
    }
    return kRangeMs;
}

void metrics_add(Metrics& a, const Metrics& b) {
    a.prompt_tokens += b.prompt_tokens;
    a.decode_tokens += b.decode_tokens;
    a.prefill_s += b.prefill_s;
    a.decode_s += b.decode_s;
    a.hits += b.hits;
    a.misses += b.misses;
    a.fallbacks += b.fallbacks;
    a.misses_late += b.misses_late;
    a.misses_unnamed += b.misses_unnamed;
    a.misses_below_bar += b.misses_below_bar;
    if (a.misses_by_layer.size() < b.misses_by_layer.size()) a.misses_by_layer.resize(b.misses_by_layer.size(), 0);
    for (size_t i = 0; i < b.misses_by_layer.size(); ++i) a.misses_by_layer[i] += b.misses_by_layer[i];
    a.stall_s += b.stall_s;
    a.prefill_hits += b.prefill_hits;
    a.prefill_misses += b.prefill_misses;
    a.prefill_stall_s += b.prefill_stall_s;
    a.bytes_read_load += b.bytes_read_load;
    a.bytes_read_prefill += b.bytes_read_prefill;
    a.bytes_read_decode += b.bytes_read_decode;
    a.reads_decode += b.reads_decode;
    a.lookahead_named += b.lookahead_named;
    a.lookahead_total += b.lookahead_total;
    a.intent_named += b.intent_named;
    a.intent_total += b.intent_total;
    for (size_t i = 0; i < a.slack.bins.size(); ++i) a.slack.bins[i] += b.slack.bins[i];
    a.slack.n += b.slack.n;
    a.slack.sum_ms += b.slack.sum_ms;
}

}  // namespace chronos::rt
