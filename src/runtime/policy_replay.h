// policy_replay.h: replays a recorded routing trace (docs/trace-format.md) offline through a
// replacement policy with a tier of `slots` (layer, expert) pairs, counting hits as the runtime
// does (a pair is a hit if it is resident when its layer asks). Three policies: LRU (what plain
// offload engines do), the runtime's own (the same Residency object the expert store asks,
// fed as a session without predictors feeds it: position and routing), and Belady's MIN (evict
// the resident pair needed again last), the best any policy can do without reading ahead.
// Every sequence starts with an empty tier, as a generation does; tokens run one at a time.
//
//     chronos::Trace t = chronos::trace_read("runs/small.trace.ctrc");
//     auto r = chronos::rt::policy_replay(t, 8, chronos::rt::ReplayPolicy::min, 0.5f);
//     double h = r.hit_rate();
#pragma once

#include <cstdint>

#include "format/trace.h"

namespace chronos::rt {

enum class ReplayPolicy : uint8_t { lru, chronos, min };
const char* replay_policy_name(ReplayPolicy p);

struct ReplayCounts {
    uint64_t hits = 0, misses = 0;
    double hit_rate() const { return hits + misses > 0 ? static_cast<double>(hits) / static_cast<double>(hits + misses) : 0.0; }
};

// slots >= 1 and at most every pair. reuse_prior as in SessionOptions (chronos only).
ReplayCounts policy_replay(const Trace& trace, int64_t slots, ReplayPolicy policy, float reuse_prior);

}  // namespace chronos::rt
