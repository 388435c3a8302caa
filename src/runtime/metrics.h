// metrics.h: what a session counts while it runs (DESIGN.md, Metrics). Every figure is counted
// from what happened: a lookup is a hit only if its pair's read was complete when the layer
// first asked for it, bytes are counted at the read call, slack is timed at the ask.
//
//     chronos::rt::Metrics total;
//     chronos::rt::metrics_add(total, session.metrics());      // sum the sessions of a benchmark
//     double p10 = total.slack.quantile_ms(0.10);
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace chronos::rt {

// Distribution of pipeline slack, in milliseconds: for each prefetched pair that a decode layer
// used, how long before the layer asked for it its read completed (negative: the read was still
// under way at the ask, and exact mode waited that long). Fixed bins of 0.1 ms over
// [-1000, 1000) ms (values beyond clamp into the end bins; the mean uses the exact values), so
// adding a sample never allocates and sessions merge by adding bins.
struct SlackHistogram {
    static constexpr double kBinMs = 0.1;
    static constexpr double kRangeMs = 1000.0;
    std::vector<uint32_t> bins = std::vector<uint32_t>(static_cast<size_t>(2 * kRangeMs / kBinMs), 0u);
    uint64_t n = 0;
    double sum_ms = 0;

    void add(double ms);
    double mean_ms() const;            // 0 without samples
    double quantile_ms(double q) const;  // lower edge of the bin holding the q-quantile; 0 without samples
};

// Decode counters are per (generated token, layer, routed expert of the router's top-k).
struct Metrics {
    int64_t prompt_tokens = 0, decode_tokens = 0;
    double prefill_s = 0, decode_s = 0;
    uint64_t hits = 0, misses = 0, fallbacks = 0;  // decode
    // Why a decode miss missed, one cause each, in this order: its read was under way (read
    // ahead, not yet landed); the prediction made for the token did not rank the pair among its
    // layer's top-k (unnamed; every miss without a predictor); it did, at a score under the
    // prefetch threshold (below the bar, not read ahead); otherwise it was named above the bar
    // and still not resident (no slot scored lower, or evicted before the ask): the rest of
    // `misses`.
    uint64_t misses_late = 0;
    uint64_t misses_unnamed = 0, misses_below_bar = 0;
    std::vector<uint64_t> misses_by_layer;  // decode misses per MoE layer (a session sizes it)
    double stall_s = 0;                            // decode time spent waiting on reads
    uint64_t prefill_hits = 0, prefill_misses = 0;
    double prefill_stall_s = 0;
    uint64_t bytes_read_load = 0, bytes_read_prefill = 0, bytes_read_decode = 0;
    uint64_t reads_decode = 0;
    uint64_t lookahead_named = 0, lookahead_total = 0;  // recall@top-k of the t+1 prediction
    uint64_t intent_named = 0, intent_total = 0;        // decode assignments the intent set named
    SlackHistogram slack;                               // used prefetches, decode
};

// a += b, field by field (benchmarks sum the sessions of several prompts).
void metrics_add(Metrics& a, const Metrics& b);

}  // namespace chronos::rt
