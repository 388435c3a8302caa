// residency.h: the runtime's replacement policy, which resident (layer, expert) pair makes room
// for another; policy apart from mechanism. The expert store (expert_store.h) reads bytes into
// slots and asks this object for a victim; the session tells it where decode is, what the
// router chose and what the predictors expect; `chronos bench policy` replays a routing trace
// through the same object, beside LRU and Belady's MIN (policy_replay.h).
//
// A pair's score is the larger of the predictors' expectation (intent classifier, lookahead;
// the session sets it) and its reuse estimate: a pair in the latest routing of its layer is
// chosen again with a probability that grows with how many tokens in a row it has been chosen
// (routing is sticky: on `small`, 0.51 after one token and 0.95 after five or more). The policy
// learns that probability per run length from the routing it sees, starting from `reuse_prior`.
// A pair not expected again scores 0.
//
// The victim is the pair with the lowest score per layer until it is needed: layers are visited
// in a cycle, so a pair of layer l' is next needed (l' - l) mod L layers after the layer l
// computing now (a full L for layer l itself). Weighing the score by that distance is what keeps
// a tier smaller than one token's experts useful: LRU evicts exactly the pair needed next there,
// and misses on every access. Among equals (all pairs scoring 0), the least recently used goes.
// Kind lru is the plain offload engine: no scores, least recently used first.
//
//     chronos::rt::Residency r(layers, experts, chronos::rt::Residency::Kind::chronos, 0.5f);
//     r.at(step, layer);  r.use(pair);  r.set_score(pair, 0.9f * p_next);
//     int i = r.victim(resident_pairs, n, /*below=*/incoming_score);   // -1: keep them all
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace chronos::rt {

class Residency {
public:
    enum class Kind : uint8_t { lru, chronos };
    Residency(int64_t layers, int64_t experts, Kind kind, float reuse_prior);

    Kind kind() const { return kind_; }
    // Decode's position: token `step` (the prompt is step 0) is computing `layer`.
    void at(int64_t step, int64_t layer);
    // The router chose `pair` at the current position.
    void use(int32_t pair);
    // The predictors' expectation for a pair (0 clears it); raise keeps the larger.
    void set_score(int32_t pair, float score) { score_[static_cast<size_t>(pair)] = score; }
    void raise_score(int32_t pair, float score);
    // What keeps a pair: max(predictors, reuse estimate); always 0 for lru.
    float score(int32_t pair) const;
    // Whether the pair is part of the latest routing of its layer.
    bool in_latest_routing(int32_t pair) const;
    // The learned probability that a pair chosen `run` tokens in a row is chosen once more.
    float reuse_estimate(int32_t run) const;
    // Index into pairs[n] (resident, evictable) of the one to evict, -1 if none may go: with
    // `below` finite, only a pair scoring under it (a prefetch must not evict a better guess).
    int victim(const int32_t* pairs, int n, float below) const;

private:
    static constexpr int kRuns = 8;  // run lengths 1 .. 7, and 8 or more
    bool evict_before(int32_t a, int32_t b) const;
    int64_t layers_until_needed(int32_t pair) const;
    void learn_layer(int64_t layer);  // counts which pairs of the layer's last two routings stayed

    int64_t L_, E_;
    Kind kind_;
    float reuse_prior_;
    int64_t step_ = 0, layer_ = 0;
    uint64_t clock_ = 0;
    std::vector<float> score_;          // per pair, the predictors' expectation
    std::vector<uint64_t> last_use_;    // per pair, clock of its latest use
    std::vector<int64_t> used_step_;    // per pair, the step that last chose it
    std::vector<int32_t> run_;          // per pair, tokens in a row its layer chose it (at used_step_)
    std::vector<int64_t> layer_step_;   // per layer, the step that computed it last
    std::vector<int64_t> layer_prev_;   // per layer, the step before that
    std::array<double, kRuns> stayed_{}, seen_{};  // per run length: chosen again / observed
};

}  // namespace chronos::rt
