// sampler.cpp: see sampler.h.
#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace chronos::rt {

Sampler::Sampler(const SamplerOptions& options, int64_t vocab) : o_(options), vocab_(vocab), rng_(options.seed) {
    if (o_.temperature < 0) fail("temperature must be >= 0, got {}", o_.temperature);
    if (o_.top_p <= 0 || o_.top_p > 1) fail("top-p must be in (0, 1], got {}", o_.top_p);
    if (o_.repetition_penalty <= 0) fail("repetition penalty must be > 0, got {}", o_.repetition_penalty);
    if (o_.top_k < 0) fail("top-k must be >= 0, got {}", o_.top_k);
    seen_.assign(static_cast<size_t>(vocab), 0);
    order_.resize(static_cast<size_t>(vocab));
    probs_.resize(static_cast<size_t>(vocab));
}

void Sampler::observe(int32_t token) {
    if (token >= 0 && token < vocab_) seen_[static_cast<size_t>(token)] = 1;
}

int32_t Sampler::sample(float* logits) {
    // NaN or +inf logits come from broken weights (NaN in a checkpoint, an overflowing narrow
    // type); they would also break the orderings below. -inf (a masked token) is fine.
    constexpr float kInf = std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < vocab_; ++i) {
        if (!(logits[i] < kInf)) fail("the model's logit for token {} is {}: its weights hold non-finite values", i, logits[i]);
    }
    if (o_.repetition_penalty != 1.0f) {
        for (int64_t i = 0; i < vocab_; ++i) {
            if (!seen_[static_cast<size_t>(i)]) continue;
            logits[i] = logits[i] > 0 ? logits[i] / o_.repetition_penalty : logits[i] * o_.repetition_penalty;
        }
    }
    if (o_.temperature == 0.0f) {
        return static_cast<int32_t>(std::max_element(logits, logits + vocab_) - logits);
    }
    // Candidates by descending logit when a cut needs the order: top-k cuts the list, top-p cuts it
    // where the mass reaches p.
    int64_t n = vocab_;
    for (int64_t i = 0; i < vocab_; ++i) order_[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
    float m = 0;
    if (o_.top_k > 0 && o_.top_k < vocab_) {
        n = o_.top_k;
        std::partial_sort(order_.begin(), order_.begin() + n, order_.end(), by_logit);
        m = logits[order_[0]];
    } else if (o_.top_p < 1.0f) {
        std::sort(order_.begin(), order_.end(), by_logit);
        m = logits[order_[0]];
    } else {
        m = *std::max_element(logits, logits + vocab_);  // no cut: vocabulary order serves (no sort per token)
    }
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
        probs_[static_cast<size_t>(i)] = std::exp((logits[order_[static_cast<size_t>(i)]] - m) / o_.temperature);
        sum += probs_[static_cast<size_t>(i)];
    }
    if (o_.top_p < 1.0f) {
        double acc = 0;
        for (int64_t i = 0; i < n; ++i) {
            acc += probs_[static_cast<size_t>(i)] / sum;
            if (acc >= o_.top_p) {
                n = i + 1;
                break;
            }
        }
        sum = 0;
        for (int64_t i = 0; i < n; ++i) sum += probs_[static_cast<size_t>(i)];
    }
    std::uniform_real_distribution<double> u(0.0, sum);
    double r = u(rng_), acc = 0;
    for (int64_t i = 0; i < n; ++i) {
        acc += probs_[static_cast<size_t>(i)];
        if (r < acc) return order_[static_cast<size_t>(i)];
    }
    return order_[static_cast<size_t>(n - 1)];
}

}  // namespace chronos::rt
