// policy_replay.cpp: see policy_replay.h.
#include "runtime/policy_replay.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "core/error.h"
#include "runtime/residency.h"

namespace chronos::rt {

const char* replay_policy_name(ReplayPolicy p) {
    switch (p) {
        case ReplayPolicy::lru: return "lru";
        case ReplayPolicy::chronos: return "chronos";
        case ReplayPolicy::min: return "min";
    }
    return "?";
}

ReplayCounts policy_replay(const Trace& trace, int64_t slots, ReplayPolicy policy, float reuse_prior) {
    const int64_t L = trace.shape.layers, E = trace.shape.experts, k = trace.shape.top_k;
    CHRONOS_ASSERT(slots >= k && slots <= L * E, "replay needs between one layer's experts and every pair of slots");
    constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
    ReplayCounts counts;
    std::vector<int32_t> resident, missing, candidates;
    std::vector<int64_t> next_use(static_cast<size_t>(L * E));  // MIN: per pair, its next access
    std::vector<int64_t> next_at;                               // MIN: per access, the pair's next access
    std::vector<uint8_t> is_resident(static_cast<size_t>(L * E));
    // One policy for the whole trace, as a server's session keeps one: what it learned from a
    // sequence's routing carries to the next; each sequence starts at step 0 and an empty tier.
    Residency r(L, E, policy == ReplayPolicy::lru ? Residency::Kind::lru : Residency::Kind::chronos, reuse_prior);
    for (const TraceSequence& seq : trace.sequences) {
        r.begin_sequence();
        const int64_t T = static_cast<int64_t>(seq.tokens.size()), n = T * L * k;
        resident.clear();
        std::fill(is_resident.begin(), is_resident.end(), 0);
        if (policy == ReplayPolicy::min) {
            next_at.assign(static_cast<size_t>(n), kNever);
            std::fill(next_use.begin(), next_use.end(), kNever);
            for (int64_t i = n - 1; i >= 0; --i) {  // accesses in order: token, layer, slot
                const int32_t p = static_cast<int32_t>((i / k) % L * E + seq.experts[static_cast<size_t>(i)]);
                next_at[static_cast<size_t>(i)] = next_use[static_cast<size_t>(p)];
                next_use[static_cast<size_t>(p)] = i;
            }
        }
        for (int64_t t = 0; t < T; ++t) {
            for (int64_t l = 0; l < L; ++l) {
                r.at(t, l);
                // The layer asks for its k experts at once: hits are what is resident now.
                missing.clear();
                for (int64_t j = 0; j < k; ++j) {
                    const int64_t i = (t * L + l) * k + j;
                    const int32_t p = static_cast<int32_t>(l * E + seq.experts[static_cast<size_t>(i)]);
                    if (is_resident[static_cast<size_t>(p)]) ++counts.hits;
                    else ++counts.misses, missing.push_back(p);
                    r.use(p, static_cast<int32_t>(j));  // the trace keeps the router's order
                    if (policy == ReplayPolicy::min) next_use[static_cast<size_t>(p)] = next_at[static_cast<size_t>(i)];
                }
                // The layer's own pairs stay while it computes (the store pins them): the
                // victim is one of the other resident pairs, for every policy alike.
                for (int32_t p : missing) {
                    if (static_cast<int64_t>(resident.size()) == slots) {
                        candidates.clear();
                        for (int32_t q : resident) {  // this layer's choices are its latest routing now
                            if (q / E != l || !r.in_latest_routing(q)) candidates.push_back(q);
                        }
                        int v = 0;
                        if (policy == ReplayPolicy::min) {
                            for (size_t c = 1; c < candidates.size(); ++c) {
                                if (next_use[static_cast<size_t>(candidates[c])] > next_use[static_cast<size_t>(candidates[static_cast<size_t>(v)])]) v = static_cast<int>(c);
                            }
                        } else {
                            v = r.victim(candidates.data(), static_cast<int>(candidates.size()), std::numeric_limits<float>::infinity());
                        }
                        const int32_t out = candidates[static_cast<size_t>(v)];
                        is_resident[static_cast<size_t>(out)] = 0;
                        const auto it = std::find(resident.begin(), resident.end(), out);
                        *it = resident.back();
                        resident.pop_back();
                    }
                    resident.push_back(p);
                    is_resident[static_cast<size_t>(p)] = 1;
                }
            }
        }
    }
    return counts;
}

}  // namespace chronos::rt
