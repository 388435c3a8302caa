// prefetcher.h: the scheduling policy of a session — what to read before it is needed, what
// each resident pair is worth, and what a layer does when an expert it needs is not resident.
// It owns the predictors' state (the intent classifier's scores for a prompt, the lookahead
// head's predictions for the next tokens) and the replacement policy (residency.h) that the
// store consults; the store (expert_store.h) only moves bytes. The session's forward calls it
// at fixed points:
//
//   prompt     begin_prompt: the intent classifier's best pairs, as many as there are slots,
//              are queued before prefill computes;
//   decode     begin_token; after block lookahead_input_layer, lookahead() per sequence of
//              the step: the head names the experts of t+1..t+K; then schedule() scores every
//              pair and queues the predictions at once; after each layer from that block on,
//              refill_layer(): the layer's pairs drop to their t+1/t+2 scores and the slots they
//              free take t+1's predicted experts of that layer;
//   each MoE   at_layer; in a prompt route_prompt (its routing, token by token, for the
//              replacement policy); count_recall, then acquire() per chosen expert: the miss
//              policy; then read_fallbacks(): soft's fallbacks of the layer read together.
//
// Several sequences may decode together (Session::decode_batch): each keeps its own
// predictions; a pair is worth the most any live sequence expects of it, and the reads queued
// are the union of their predictions, so one read serves every sequence that routes there.
//
// Miss policies (MissMode): exact waits (output identical to resident at any budget); soft lets
// the shared expert stand in (availability 0, counted as a fallback) and keeps or queues the
// read for later tokens; lru is the plain offload engine (no prediction, blocking read, LRU
// eviction); resident reads every expert at start.
//
//     chronos::rt::Prefetcher pf(model, options);
//     chronos::rt::ExpertStore store(model.manifest, model.dir, budget, k, options.io, &pf.residency());
//     pf.begin_prompt(/*seq=*/0, ids, T, /*step=*/0, store);
//     bool computes = pf.acquire(pair, rows, /*rank=*/0, /*decode=*/true, PairState::absent, ask_s, store, metrics);
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/expert_store.h"
#include "runtime/metrics.h"
#include "runtime/model.h"
#include "runtime/residency.h"

namespace chronos::rt {

enum class MissMode : uint8_t { exact, soft, lru, resident };
const char* miss_mode_name(MissMode m);
MissMode miss_mode_parse(const std::string& name);  // throws on an unknown name

struct SessionOptions {
    MissMode mode = MissMode::exact;
    uint64_t ram_budget = 0;  // bytes for expert slots; 0: all experts (resident holds all whatever it says)
    IoOptions io;
    bool use_intent = true;     // exact/soft: prefetch the intent classifier's set at prefill
    bool use_lookahead = true;  // exact/soft: prefetch the lookahead's predictions in decode
    bool preload = false;       // fill every slot before the first prompt (a warm start)
    float prefetch_threshold = 0.45f;  // lookahead candidates scoring below this are not read
    float reuse_prior = 0.5f;         // prior reuse probability of a pair in its layer's latest routing (residency.h)
    int32_t max_sequences = 1;        // sequences that may decode together (Session::decode_batch)
};

// A pair's read, when its layer asks for it: complete, under way, or not started.
enum class PairState : uint8_t { ready, loading, absent };

// An oracle for Session::on_predict: overwrites the lookahead's predictions pred [K, L, E]
// for decode steps step+1 .. step+K with recorded routing, routes [n / (L*k)][L][k] (decode
// step s at row s-1): 1 for each chosen expert, 0 for the rest. Steps past the recording keep
// the head's own prediction.
void prediction_from_routes(const int32_t* routes, int64_t n, const ModelConfig& c, int64_t step, float* pred);

class Prefetcher {
public:
    Prefetcher(const Model& model, const SessionOptions& options);

    Residency& residency() { return residency_; }
    bool predicts() const;  // exact or soft: the predictors schedule reads

    // Sequence seq starts a prompt from position 0, `step` the session's decode steps so far:
    // forgets its predictions; queues the intent classifier's set.
    void begin_prompt(int32_t seq, const int32_t* ids, int64_t T, int64_t step, ExpertStore& store);
    // Sequence seq ended: its predictions no longer hold slots.
    void end_sequence(int32_t seq);
    // A decode token of seq: the prediction made for it becomes the current one.
    void begin_token(int32_t seq);
    // Layer l routes for decode step `step` (the session's decode steps so far while a prompt runs).
    void at_layer(int64_t step, int64_t l) { residency_.at(step, l); }
    // The prompt's routing of layer l, top [T, k] (each row best first), told to the replacement
    // policy as decoding the prompt token by token would have left it (how recently and how
    // many tokens in a row each pair was chosen, its rank then), before the layer acquires.
    void route_prompt(int64_t l, const int32_t* top, int64_t T);
    // Recall of seq's predictions against the experts the router chose for its token, top [k].
    void count_recall(int32_t seq, int64_t l, const int32_t* top, Metrics& m) const;
    // The miss policy for one chosen pair, `assignments` rows routed to it (in decode, its best
    // rank among their choices: `rank`, 0 for a row's top choice), its read in state `asked` when the layer
    // asked at ask_s (steady-clock seconds). Counts the hit or miss, the stall and the pipeline
    // slack; returns whether the expert computes (it is then ready).
    bool acquire(int32_t pair, uint64_t assignments, int32_t rank, bool decode, PairState asked, double ask_s,
                 ExpertStore& store, Metrics& m);
    // After a layer's experts: queues the reads soft mode's fallbacks of that layer asked for,
    // together (one notification of the disk for all of them).
    void read_fallbacks(ExpertStore& store);
    // The lookahead head for sequence seq on h [H] (block lookahead_input_layer's output) and a
    // full routing route [L*E]; `on_predict` (may be empty) may overwrite its predictions.
    // Keeps seq's predictions of t+1..t+K; schedule() acts on them.
    void lookahead(int32_t seq, const float* h, const float* route, int64_t step,
                   const std::function<void(int64_t step, float* pred)>& on_predict);
    // After the step's lookaheads (exact and soft): every pair's score from the live sequences'
    // predictions, and their predicted experts queued.
    void schedule(ExpertStore& store);
    // Layer l computed the current token: its pairs' scores and freed slots turn to t+1.
    void refill_layer(int64_t l, ExpertStore& store);

private:
    // One sequence's predictions.
    struct Stream {
        bool live = false, have_pred = false;
        int64_t prompt_step = 0;           // the session's decode steps at its prompt
        std::vector<float> la_out;         // the head's latest P(chosen) per pair at t+1..t+K [K, L, E]
        std::vector<float> pred_next;      // [cur | next] predicted P(chosen) per pair [2, L, E]
        std::vector<int32_t> pred_top;     // [cur | next] predicted top-k per layer [2, L, k]
        std::vector<float> intent_score;   // [L*E] the intent classifier's score per pair
        std::vector<uint8_t> intent_set;   // [L*E] the pairs it queued
    };
    float pair_score(int32_t pair, bool current_token) const;
    // Counts a decode miss of `assignments` rows by its layer and cause (Metrics).
    void count_miss(int32_t pair, PairState asked, uint64_t assignments, Metrics& m) const;
    // Adds a candidate read to la_pairs_/la_scores_ [n], once per pair (the highest score).
    void add_candidate(int32_t pair, float score, int& n);
    void clear_candidates(int n);
    int confident(int n);

    const Model& model_;
    SessionOptions options_;
    Residency residency_;
    int64_t step_ = 0;                            // the session's decode steps at the latest lookahead
    std::vector<Stream> streams_;                 // [max_sequences]
    std::vector<float> la_in_, la_hid_;           // the head's scratch: [H + L*E], [D]
    std::vector<int32_t> la_pairs_, la_top_;      // candidates [S*K*L*k], one row's top-k [k]
    std::vector<float> la_scores_;                // [S*K*L*k]
    std::vector<int32_t> intent_pairs_;           // [L*E] pairs by intent score
    std::vector<int32_t> cand_at_;                // [L*E] a pair's place among the candidates, -1: none
    std::vector<int32_t> fallback_pairs_;         // [E] a layer's soft fallbacks to read, read_fallbacks()
    std::vector<float> fallback_scores_;          // [E]
    int n_fallbacks_ = 0;
    std::vector<int64_t> prompt_last_;            // [E] route_prompt: the last row choosing the expert, -1: none
    std::vector<int32_t> prompt_run_, prompt_rank_, prompt_order_;  // [E] its run and rank at that row; experts by it
};

}  // namespace chronos::rt
