// session.h: one generation's state over a Model — KV caches, scratch buffers, the expert store
// and its scheduling, metrics. Weights live in Model; everything that changes lives here.
//
// Forward passes: prefill() runs the prompt as a batch (GEMM); decode() runs one token (GEMV).
// Both use buffers sized at construction; the decode step allocates nothing.
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

    // Runs the prompt from position 0 (resets the caches). logits() then holds the last
    // position's logits; with logits_all, every position's logits go there ([T, V]).
    void prefill(const int32_t* ids, int64_t T, float* logits_all = nullptr);
    // Runs one token at the next position.
    void decode(int32_t id);
    const float* logits() const { return logits_.data(); }
    float* logits() { return logits_.data(); }
    int64_t position() const { return pos_; }
    int64_t context() const { return model_.config.max_position_embeddings; }

    Metrics& metrics() { return metrics_; }
    const ExpertStore& store() const { return *store_; }
    ExpertStore& store() { return *store_; }
    const SessionOptions& options() const { return options_; }

    // Test hook, called after each MoE layer: layer, the top-k experts of each of the T rows
    // [T, k], and the availability the layer computed with, per expert [E] (1 or 0).
    std::function<void(int64_t layer, const int32_t* topk, int64_t T, const float* avail)> on_route;
    // Benchmark hook, called right after the lookahead head ran, with `step` the decode steps
    // the Session has run (0 while its first prompt runs): it may overwrite the head's
    // distributions pred [K, L, E] for steps step+1 .. step+K before anything is scheduled from
    // them. `chronos bench offload --oracle` writes there the routing a resident run recorded:
    // what a perfect predictor would buy.
    std::function<void(int64_t step, float* pred)> on_predict;

private:
    enum class Phase : uint8_t { prefill, decode };
    void forward(const int32_t* ids, int64_t T, Phase phase, float* logits_all);
    void moe_layer(int64_t l, int64_t T, Phase phase);  // a_ [T, H] -> adds into h_

    const Model& model_;
    SessionOptions options_;
    Prefetcher prefetcher_;  // predictions, scores, the miss policy; owns the replacement policy
    std::unique_ptr<ExpertStore> store_;
    Metrics metrics_;
    int64_t pos_ = 0;
    int64_t tmax_ = 0;   // longest batch the buffers hold
    int64_t step_ = 0;   // decode steps so far (prefill is step 0)

    std::vector<LayerCache> caches_;  // per layer
    AttentionScratch attn_;
    MoeGroups groups_;
    ExpertScratch expert_;
    // [T, ...] buffers sized for tmax_ rows: residual stream h_, normalised input a_, attention
    // output att_, router probabilities probs_ [T, E] and top-k topi_/topw_ [T, k], expert
    // outputs y_ [T*k, H], shared expert activations sg_/su_ [T, Fs].
    std::vector<float> h_, a_, att_, probs_, topw_, y_, sg_, su_;
    std::vector<int32_t> topi_, order_;  // order_ [E]: the chosen experts in compute order
    std::vector<PairState> asked_;       // per expert of the current layer
    std::vector<float> avail_;           // [E] 1 if the expert computed, 0 if it fell back
    std::vector<float> logits_, h_la_;   // [V], the head's input [H]
    std::vector<float> route_prev_, route_cur_, route_prev2_;  // full routings [L*E]: t-1, t, t-2 (prompt)
};

}  // namespace chronos::rt
