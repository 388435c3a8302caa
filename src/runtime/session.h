// session.h: one generation's state over a Model — KV caches, scratch buffers, the expert store
// and its scheduling, metrics. Weights live in Model; everything that changes lives here.
//
// Forward passes: prefill() runs the prompt as a batch (GEMM); decode() runs one token (GEMV).
// Both use buffers sized at construction; the decode step allocates nothing.
//
// Scheduling (the point of Chronos):
//   prefill  the intent classifier's predicted pairs are queued before the first layer runs,
//            so their reads overlap prefill compute;
//   decode   after block j = lookahead_input_layer (0 by default) of token t the lookahead head
//            names the experts of t+1..t+K; they are queued at once and read while the later
//            layers of t compute, and each layer from j on refills its freed slots with them.
// Miss policies (MissMode): exact waits (output identical to resident at any budget); soft lets
// the shared expert stand in (availability 0, counted as a fallback) and queues the read for
// later tokens; lru is the plain offload engine (no prediction, blocking read, LRU eviction);
// resident reads every expert at start.
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
#include "runtime/metrics.h"
#include "runtime/model.h"

namespace chronos::rt {

enum class MissMode : uint8_t { exact, soft, lru, resident };
const char* miss_mode_name(MissMode m);
MissMode miss_mode_parse(const std::string& name);  // throws on an unknown name

struct SessionOptions {
    MissMode mode = MissMode::exact;
    uint64_t ram_budget = 0;  // bytes for expert slots; 0: all experts
    IoOptions io;
    bool use_intent = true;     // exact/soft: prefetch the intent classifier's set at prefill
    bool use_lookahead = true;  // exact/soft: prefetch the lookahead's predictions in decode
    bool preload = false;       // fill every slot before the first prompt (a warm start)
    float prefetch_threshold = 0.45f;  // lookahead candidates scoring below this are not read
    float reuse_prior = 0.5f;         // score floor of a pair in its layer's latest routing (residency.h)
};

// An oracle for Session::on_predict: overwrites the lookahead's distributions pred [K, L, E]
// for decode steps step+1 .. step+K with recorded routing, routes [n / (L*k)][L][k] (decode
// step s at row s-1): 1 for each chosen expert, 0 for the rest. Steps past the recording keep
// the head's own prediction.
void prediction_from_routes(const int32_t* routes, int64_t n, const ModelConfig& c, int64_t step, float* pred);

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
    enum class PairState : uint8_t { ready, loading, absent };  // of a pair's read, when its layer asks
    void forward(const int32_t* ids, int64_t T, Phase phase, float* logits_all);
    void attention(int64_t l, int64_t T);  // a_ [T, H] -> att_ [T, H]
    void moe(int64_t l, int64_t T, Phase phase);  // a_ [T, H] -> adds into h_
    bool acquire(int32_t pair, uint64_t assignments, Phase phase, PairState asked, double ask_s);
    void expert_forward(int32_t pair, const int32_t* rows, float* out, int64_t n);
    void lookahead_prefetch(const float* h, const float* route);
    void refill_layer(int64_t l);
    int confident(int n);
    float pair_score(int32_t pair, bool current_token) const;
    void intent_prefetch(const int32_t* ids, int64_t T);

    const Model& model_;
    SessionOptions options_;
    Residency residency_;  // what the store evicts; scores from the predictors below
    std::unique_ptr<ExpertStore> store_;
    Metrics metrics_;
    int64_t pos_ = 0;
    int64_t tmax_ = 0;  // longest batch the buffers hold

    // Caches, per layer. MLA: latent [P, r] and rope key [P, dr]. GQA: [P, nkv*hd];
    // sliding window: a ring of `window` rows with their positions.
    std::vector<std::vector<float>> cache_a_, cache_b_;
    std::vector<std::vector<int64_t>> ring_pos_;

    // Scratch. [T, ...] buffers are sized for tmax_ rows.
    std::vector<float> h_, a_, att_, q_, kv_, k_, v_, heads_, probs_, topw_, xs_, g_, u_, y_, sg_, su_, conv_;
    std::vector<int32_t> topi_, count_, start_, rows_, order_;
    std::vector<PairState> asked_;  // per expert of the current layer
    std::vector<float> rows_w_, avail_, thread_scratch_;
    std::vector<float> logits_, h_la_, route_prev_, route_cur_, route_prev2_;
    std::vector<float> la_in_, la_hid_, la_out_, pred_next_, intent_score_;
    std::vector<int32_t> pred_top_, la_pairs_, la_top_;
    std::vector<float> la_scores_;
    std::vector<uint8_t> intent_set_;
    bool have_pred_ = false;
    int64_t step_ = 0;                // decode steps so far (prefill is step 0)
    int64_t scratch_per_thread_ = 0;
};

}  // namespace chronos::rt
