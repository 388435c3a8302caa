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
    CHRONOS_ASSERT(slots >= 1 && slots <= L * E, "replay needs between 1 and every pair of slots");
    constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
    ReplayCounts counts;
    std::vector<int32_t> resident, missing;
    std::vector<int64_t> next_use(static_cast<size_t>(L * E));  // MIN: per pair, its next access
    std::vector<int64_t> next_at;                               // MIN: per access, the pair's next access
    std::vector<uint8_t> is_resident(static_cast<size_t>(L * E));
    for (const TraceSequence& seq : trace.sequences) {
        const int64_t T = static_cast<int64_t>(seq.tokens.size()), n = T * L * k;
        Residency r(L, E, policy == ReplayPolicy::lru ? Residency::Kind::lru : Residency::Kind::chronos, reuse_prior);
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
                    r.use(p);
                    if (policy == ReplayPolicy::min) next_use[static_cast<size_t>(p)] = next_at[static_cast<size_t>(i)];
                }
                for (int32_t p : missing) {
                    if (static_cast<int64_t>(resident.size()) == slots) {
                        int v = 0;
                        if (policy == ReplayPolicy::min) {
                            for (size_t c = 1; c < resident.size(); ++c) {
                                if (next_use[static_cast<size_t>(resident[c])] > next_use[static_cast<size_t>(resident[static_cast<size_t>(v)])]) v = static_cast<int>(c);
                            }
                        } else {
                            v = r.victim(resident.data(), static_cast<int>(resident.size()), std::numeric_limits<float>::infinity());
                        }
                        is_resident[static_cast<size_t>(resident[static_cast<size_t>(v)])] = 0;
                        resident[static_cast<size_t>(v)] = resident.back();
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
