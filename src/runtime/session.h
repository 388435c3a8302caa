// session.h: one generation's state over a Model — KV caches, scratch buffers, the expert store
// and its scheduling, metrics. Weights live in Model; everything that changes lives here.
//
// Forward passes: prefill() runs the prompt as a batch (GEMM); decode() runs one token (GEMV).
// Both use buffers sized at construction; the decode step allocates nothing.
//
// Sequences: a session holds options.max_sequences independent generations (KV caches,
// positions, predictions) over one expert tier. decode_batch() runs one token of several of
// them as one step: each routed expert is fetched once for every row that routes to it, and
// every row's products are formed exactly as decode() forms them alone (matmul_wt_rowwise), so
// in exact mode a sequence's logits do not depend on which others share its steps.
//
// Scheduling (the point of Chronos) is the Prefetcher's (prefetcher.h): the session calls it at
// the prompt, at each token, after block lookahead_input_layer and for each expert a layer
// needs; the ExpertStore (expert_store.h) moves the bytes. The layers are plain functions
// (layers.h) over the session's caches and scratch.
//
//     chronos::rt::Model model("runs/small");
//     chronos::rt::Session s(model, {.mode = chronos::rt::MissMode::exact, .ram_budget = 1 << 24});
//     s.prefill(ids.data(), ids.size());
//     s.decode(next_id);                 // s.logits() -> [V]
//     s.metrics().hits;
//     // two sequences (options.max_sequences = 2): prefill each, then step both at once
//     s.prefill_sequence(1, other.data(), other.size());
//     int32_t seqs[2] = {0, 1}, ids[2] = {a, b};
//     s.decode_batch(seqs, ids, 2);       // s.logits(0), s.logits(1)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/expert_store.h"
#include "runtime/layers.h"
#include "runtime/metrics.h"
#include "runtime/model.h"
#include "runtime/prefetcher.h"

namespace chronos::rt {

class Session {
public:
    Session(const Model& model, const SessionOptions& options);
    ~Session();

    // Runs the prompt of sequence 0 from position 0 (resets its caches). logits() then holds
    // the last position's logits; with logits_all, every position's logits go there ([T, V]).
    void prefill(const int32_t* ids, int64_t T, float* logits_all = nullptr) { prefill_sequence(0, ids, T, logits_all); }
    // Runs one token of sequence 0 at its next position.
    void decode(int32_t id) {
        const int32_t seq = 0;
        decode_batch(&seq, &id, 1);
    }
    const float* logits() const { return logits(0); }
    float* logits() { return logits(0); }
    int64_t position() const { return position(0); }
    int64_t context() const { return model_.config.max_position_embeddings; }

    // The same for any sequence seq < sequences(): a prompt from position 0, and one step for
    // B distinct sequences seqs [B] with tokens ids [B].
    void prefill_sequence(int32_t seq, const int32_t* ids, int64_t T, float* logits_all = nullptr);
    void decode_batch(const int32_t* seqs, const int32_t* ids, int64_t B);
    // Sequence seq is finished: its predictions stop holding slots (a prefill starts it again).
    void release(int32_t seq);
    const float* logits(int32_t seq) const { return seq_at(seq).logits.data(); }
    float* logits(int32_t seq) { return seq_at(seq).logits.data(); }
    int64_t position(int32_t seq) const { return seq_at(seq).pos; }
    int32_t sequences() const { return static_cast<int32_t>(seqs_.size()); }

    Metrics& metrics() { return metrics_; }
    const ExpertStore& store() const { return *store_; }
    ExpertStore& store() { return *store_; }
    const SessionOptions& options() const { return options_; }

    // Test hook, called after each MoE layer: its MoE index (model_config.h), the top-k experts
    // of each of the T rows [T, k], and the availability the layer computed with, per expert [E]
    // (1 or 0).
    std::function<void(int64_t layer, const int32_t* topk, int64_t T, const float* avail)> on_route;
    // Benchmark hook, called right after the lookahead head ran, with `step` the decode steps
    // the Session has run (0 while its first prompt runs): it may overwrite the head's
    // predictions pred [K, L, E] for steps step+1 .. step+K (the probability that each pair is
    // chosen: k x the softmax of a head trained on the top-k choice) before anything is
    // scheduled from them. `chronos bench offload --oracle` writes there the routing a resident
    // run recorded: what a perfect predictor would buy.
    std::function<void(int64_t step, float* pred)> on_predict;

private:
    // One sequence's state: its caches, position, logits and the routings its lookahead reads.
    struct Sequence {
        std::vector<LayerCache> caches;  // per layer
        int64_t pos = 0;
        std::vector<float> logits, h_la;                       // [V], the head's input [H]
        std::vector<float> route_prev, route_cur, route_prev2;  // full routings [L*E]: t-1, t, t-2 (prompt)
    };
    enum class Phase : uint8_t { prefill, decode };
    const Sequence& seq_at(int32_t seq) const;
    Sequence& seq_at(int32_t seq) { return const_cast<Sequence&>(static_cast<const Session*>(this)->seq_at(seq)); }
    // T rows: a prompt of sequence row_seq_[0] (prefill) or one token of each of row_seq_[0..T).
    void forward(const int32_t* ids, int64_t T, Phase phase, float* logits_all);
    void moe_layer(int64_t l, int64_t T, Phase phase);  // a_ [T, H] -> adds into h_

    const Model& model_;
    SessionOptions options_;
    Prefetcher prefetcher_;  // predictions, scores, the miss policy; owns the replacement policy
    std::unique_ptr<ExpertStore> store_;
    Metrics metrics_;
    int64_t tmax_ = 0;   // longest batch the buffers hold
    int64_t step_ = 0;   // decode steps so far (prefill is step 0)
    std::vector<Sequence> seqs_;
    std::vector<int32_t> row_seq_;  // [tmax_] the sequence of each row of the current forward
    std::vector<LayerCache*> row_cache_;  // [S] a decode step's caches of one layer, per row
    std::vector<int64_t> row_pos_;        // [S] and positions

    AttentionScratch attn_;
    MoeGroups groups_;
    ExpertScratch expert_;
    // [T, ...] buffers sized for tmax_ rows: residual stream h_, normalised input a_, attention
    // output att_, router probabilities probs_ [T, E] and top-k topi_/topw_ [T, k], expert
    // outputs y_ [T*k, H], shared expert activations sg_/su_ [T, Fs], logits of a batch lo_ [B, V].
    std::vector<float> h_, a_, att_, probs_, topw_, y_, sg_, su_, lo_;
    std::vector<float> choice_;  // the router's scratch (router_choice_len)
    std::vector<int32_t> topi_, order_;  // order_ [E]: the chosen experts in compute order
    std::vector<PairState> asked_;       // per expert of the current layer
    std::vector<int32_t> rank_;          // per expert of the current layer, its best rank in the rows' top-k
    std::vector<int32_t> demand_;        // [E] the layer's absent pairs, read together (exact)
    std::vector<float> avail_;           // [E] 1 if the expert computed, 0 if it fell back
};

}  // namespace chronos::rt
