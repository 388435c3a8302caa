// sampler.h: next-token sampling — greedy, temperature, top-k, top-p, repetition penalty, seed.
// The repetition penalty lowers the probability of every token already seen, whatever the sign
// of its logit (a positive logit is divided by the penalty, a negative one multiplied), which
// is the CTRL rule; dividing a negative logit would raise it.
//
//     chronos::rt::Sampler s({.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .seed = 1}, vocab);
//     int32_t next = s.sample(logits);   // logits [V], modified in place by the penalty
//     s.observe(next);
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace chronos::rt {

struct SamplerOptions {
    float temperature = 0.0f;        // 0: greedy
    int64_t top_k = 0;               // 0: off
    float top_p = 1.0f;              // 1: off
    float repetition_penalty = 1.0f; // 1: off
    uint64_t seed = 0;
};

class Sampler {
public:
    Sampler(const SamplerOptions& options, int64_t vocab);
    // Picks the next token from logits [V] (penalised in place).
    int32_t sample(float* logits);
    // Marks a token as seen (prompt and generated tokens) for the repetition penalty.
    void observe(int32_t token);

private:
    SamplerOptions o_;
    int64_t vocab_;
    std::mt19937_64 rng_;
    std::vector<uint8_t> seen_;
    std::vector<int32_t> order_;  // scratch, sized once
    std::vector<float> probs_;
};

}  // namespace chronos::rt
