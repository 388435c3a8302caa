// residency.h: the runtime's replacement policy, which resident (layer, expert) pair makes room
// for another; policy apart from mechanism. The expert store (expert_store.h) reads bytes into
// slots and asks this object for a victim; the session tells it where decode is, what the
// router chose and what the predictors expect; `chronos bench policy` replays a routing trace
// through the same object, beside LRU and Belady's MIN (policy_replay.h).
//
// Who may be evicted: a pair's score is the larger of the predictors' expectation (intent
// classifier, lookahead; the session sets it) and `reuse_prior` for a pair in one of its layer's
// last two routings (routing is sticky). A prefetch may only evict a pair scoring below its own.
//
// Which goes first: the pair with the lowest expectation per layer until it is needed. Its
// expectation is the probability, learned from the routing the policy sees, that its layer's
// next routing chooses it, given what is known before that routing: the predictors' score (in
// buckets of 0.1); how many tokens in a row the pair has been chosen (routing is sticky: on
// `small`'s validation trace, chosen again with 0.41 after one token, 0.80 after five) and the
// rank the router gave it (there the first of a token's four choices is chosen again with 0.45
// to 0.88 by layer, the fourth with 0.27 to 0.60) or, for a pair out of the latest routing, how
// many routings ago it was last chosen; and the pair's recent share of its layer's choices
// against the layer's mean (some experts are chosen far more often than others). Learning these together calibrates the predictors against the stickiness: a perfect
// predictor's 0 wins over a long run, a weak one's does not. Each cell starts at its prior (the
// score, raised to `reuse_prior` for a pair in the latest routing) with two pseudo-observations,
// and what it learned outlives a sequence (`begin_sequence`), as in a server's session. A
// prompt's routing comes in as decoding it token by token would have left it (`use_prompt`).
// Layers are visited in a cycle, so a pair of layer l' is next needed (l' - l) mod L
// layers after the layer l computing now (a full L for layer l itself). Weighing by that
// distance keeps a tier smaller than one token's experts useful: LRU evicts exactly the pair
// needed next there, and misses on every access. Pairs never chosen and not expected count 0,
// and among equals the least recently used goes. Kind lru is the plain offload engine: no
// scores, LRU.
//     chronos::rt::Residency r(layers, experts, chronos::rt::Residency::Kind::chronos, 0.5f);
//     r.at(step, layer);  r.use(pair, rank);  r.set_score(pair, 0.9f * p_next);
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
    // A new sequence starts at step 0: positions, runs and scores are cleared; what was learned
    // (the cells' counts, each pair's share) stays.
    void begin_sequence();
    // The router chose `pair` at the current position, `rank`-th by its score (0: the best; a
    // batch that chose it several times gives the best of its ranks).
    void use(int32_t pair, int32_t rank);
    // The prompt's routing, as decoding it token by token would have left the pair: last chosen
    // `gap` tokens before the prompt's last (0: by the last), there at `rank`, `run` tokens in a
    // row up to then. Called at the prompt's position instead of use(); a more recent use (another
    // sequence's, in a session that decodes several) is kept.
    void use_prompt(int32_t pair, int32_t gap, int32_t run, int32_t rank);
    // The predictors' expectation for a pair (0 clears it); raise keeps the larger.
    void set_score(int32_t pair, float score) { score_[static_cast<size_t>(pair)] = score; }
    void raise_score(int32_t pair, float score);
    // What protects a pair from a prefetch: max(predictors, reuse prior); always 0 for lru.
    float score(int32_t pair) const;
    // Whether the pair is part of the latest routing of its layer, or of one of its last two.
    bool in_latest_routing(int32_t pair) const;
    bool in_recent_routing(int32_t pair) const;
    // The learned probability that the pair is chosen at its layer's next routing, given its
    // predictors' score, its run or how long ago it was chosen, and its share.
    float expectation(int32_t pair) const;
    // Index into pairs[n] (resident, evictable) of the one to evict, -1 if none may go: with
    // `below` finite, only a pair scoring under it (a prefetch must not evict a better guess).
    int victim(const int32_t* pairs, int n, float below) const;

private:
    static constexpr int kRuns = 8;     // in the latest routing: run lengths 1 .. 7, and 8 or more
    static constexpr int kRanks = 4;    // ... and its rank there: 0, 1, 2, 3 or lower
    static constexpr int kGaps = 16;    // out of it: chosen 1 .. 15, or 16 or more, routings before the latest
    static constexpr int kHistory = 1 + kRuns * kRanks + kGaps;  // 0: never chosen, then (run, rank), then gaps
    static constexpr int kScores = 10;  // predictor score buckets of width 0.1
    static constexpr int kShares = 8;   // the pair's share against its layer's mean, 8 buckets (share_bucket)
    static constexpr float kShareRate = 1.0f / 32;  // weight of the latest routing in a pair's share
    // Steps before any real one (a prompt's earlier tokens sit at negative steps when the first
    // prompt is step 0): never chosen, and the layers' routings before the first.
    static constexpr int64_t kNever = INT64_MIN / 4, kNoStep = kNever + 1, kNoStepBefore = kNever + 2;
    size_t cell(int32_t pair) const;    // (score, history, share buckets) -> index into stayed_/seen_
    size_t share_bucket(int32_t pair) const;
    void snapshot_layer(int64_t layer); // the cells of the layer's pairs before it routes
    bool evict_before(int32_t a, int32_t b) const;
    int64_t layers_until_needed(int32_t pair) const;
    void learn_layer(int64_t layer);  // counts, per cell, which pairs its latest routing chose

    int64_t L_, E_;
    Kind kind_;
    float reuse_prior_;
    int64_t step_ = 0, layer_ = 0;
    uint64_t clock_ = 0;
    std::vector<float> score_;          // per pair, the predictors' expectation
    std::vector<uint64_t> last_use_;    // per pair, clock of its latest use
    std::vector<int64_t> used_step_;    // per pair, the step that last chose it
    std::vector<int32_t> run_;          // per pair, tokens in a row its layer chose it (at used_step_)
    std::vector<int32_t> rank_;         // per pair, its rank at used_step_
    std::vector<int64_t> layer_step_;   // per layer, the step that computed it last
    std::vector<int64_t> layer_prev_;   // per layer, the step before that
    std::vector<int32_t> cell_at_;      // per pair, its cell before its layer's latest routing
    std::vector<float> share_;          // per pair, moving average of being chosen at its layer's routings
    std::vector<double> share_mean_;    // per layer, the mean of its pairs' shares
    std::array<double, kScores * kHistory * kShares> stayed_{}, seen_{};  // per cell: chosen / observed
};

}  // namespace chronos::rt
