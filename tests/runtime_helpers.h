// runtime_helpers.h: what the runtime's tests share: random prompts and a session's logits over
// a prompt and a teacher-forced continuation.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "runtime/runtime.h"

namespace chronos::test {

inline std::vector<int32_t> random_ids(int64_t n, int64_t vocab, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (auto& x : ids) x = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
    return ids;
}

// Runtime logits for a prompt of `prompt` ids then teacher-forced decode of the rest: [n, V].
inline std::vector<float> runtime_logits(rt::Session& s, const std::vector<int32_t>& ids, int64_t prompt, int64_t V) {
    std::vector<float> out(ids.size() * static_cast<size_t>(V));
    s.prefill(ids.data(), prompt, out.data());
    for (size_t t = static_cast<size_t>(prompt); t < ids.size(); ++t) {
        s.decode(ids[t]);
        std::copy(s.logits(), s.logits() + V, out.begin() + static_cast<int64_t>(t) * V);
    }
    return out;
}

}  // namespace chronos::test
