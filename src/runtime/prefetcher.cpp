// prefetcher.cpp: see prefetcher.h. Shapes: L layers, E routed experts, k experts per token,
// K lookahead steps, H hidden.
#include "runtime/prefetcher.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "runtime/kernels.h"
#include "runtime/layers.h"

namespace chronos::rt {

namespace {

// What a prediction is worth on the eviction scale (docs/runtime.md), against 1 for a pair the
// token being computed still needs: the nearer token more than the later one, the intent
// classifier's prior (within its horizon) below both. The prefetch threshold is applied to the
// weighted score.
constexpr float kWeightNextToken = 0.9f;   // the lookahead's P(chosen) at t+1
constexpr float kWeightLaterToken = 0.8f;  // at t+2 and beyond
constexpr float kWeightIntent = 0.3f;      // the intent classifier's sigmoid

// kk indexes the lookahead's steps: 0 is t+1.
float lookahead_weight(int64_t kk) { return kk == 0 ? kWeightNextToken : kWeightLaterToken; }

}  // namespace

const char* miss_mode_name(MissMode m) {
    switch (m) {
        case MissMode::exact: return "exact";
        case MissMode::soft: return "soft";
        case MissMode::lru: return "lru";
        case MissMode::resident: return "resident";
    }
    return "?";
}

MissMode miss_mode_parse(const std::string& name) {
    for (MissMode m : {MissMode::exact, MissMode::soft, MissMode::lru, MissMode::resident}) {
        if (name == miss_mode_name(m)) return m;
    }
    fail("unknown mode '{}' (exact, soft, lru or resident)", name);
}

void prediction_from_routes(const int32_t* routes, int64_t n, const ModelConfig& c, int64_t step, float* pred) {
    const int64_t L = c.n_moe_layers(), E = c.n_routed_experts, k = c.num_experts_per_tok;
    CHRONOS_ASSERT(n % (L * k) == 0, "routes must hold whole steps of [L, k]");
    const int64_t steps = n / (L * k);
    for (int64_t kk = 0; kk < c.lookahead_steps; ++kk) {
        const int64_t s = step + 1 + kk;
        if (s > steps) break;
        for (int64_t l = 0; l < L; ++l) {
            float* row = pred + (kk * L + l) * E;
            std::fill(row, row + E, 0.0f);
            for (int64_t j = 0; j < k; ++j) row[routes[((s - 1) * L + l) * k + j]] = 1.0f;
        }
    }
}

Prefetcher::Prefetcher(const Model& model, const SessionOptions& options)
    : model_(model),
      options_(options),
      residency_(model.config.n_moe_layers(), model.config.n_routed_experts,
                 options.mode == MissMode::lru ? Residency::Kind::lru : Residency::Kind::chronos, options.reuse_prior) {
    const ModelConfig& c = model_.config;
    const int64_t H = c.hidden_size, L = c.n_moe_layers(), E = c.n_routed_experts, k = c.num_experts_per_tok;
    const int64_t K = c.lookahead_steps, S = std::max<int32_t>(options.max_sequences, 1);
    auto sized = [](std::vector<float>& v, int64_t n) { v.assign(static_cast<size_t>(std::max<int64_t>(n, 1)), 0.0f); };
    sized(la_in_, H + L * E);
    sized(la_hid_, model_.lookahead.hidden);
    streams_.resize(static_cast<size_t>(S));
    for (Stream& st : streams_) {
        sized(st.la_out, K * L * E);
        sized(st.pred_next, 2 * L * E);
        sized(st.intent_score, L * E);
        st.pred_top.assign(static_cast<size_t>(2 * L * k), -1);
        st.intent_set.assign(static_cast<size_t>(L * E), 0);
    }
    la_top_.assign(static_cast<size_t>(k), 0);
    la_pairs_.assign(static_cast<size_t>(S * std::max<int64_t>(K, 1) * L * k), 0);
    sized(la_scores_, S * std::max<int64_t>(K, 1) * L * k);
    intent_pairs_.assign(static_cast<size_t>(L * E), 0);
    cand_at_.assign(static_cast<size_t>(L * E), -1);
    fallback_pairs_.assign(static_cast<size_t>(E), 0);
    fallback_scores_.assign(static_cast<size_t>(E), 0.0f);
    prompt_last_.assign(static_cast<size_t>(E), -1);
    prompt_run_.assign(static_cast<size_t>(E), 0);
    prompt_rank_.assign(static_cast<size_t>(E), 0);
    prompt_order_.assign(static_cast<size_t>(E), 0);
}

void Prefetcher::add_candidate(int32_t pair, float score, int& n) {
    int32_t& at = cand_at_[static_cast<size_t>(pair)];
    if (at >= 0) {
        la_scores_[static_cast<size_t>(at)] = std::max(la_scores_[static_cast<size_t>(at)], score);
        return;
    }
    at = n;
    la_pairs_[static_cast<size_t>(n)] = pair;
    la_scores_[static_cast<size_t>(n)] = score;
    ++n;
}

void Prefetcher::clear_candidates(int n) {
    for (int i = 0; i < n; ++i) cand_at_[static_cast<size_t>(la_pairs_[static_cast<size_t>(i)])] = -1;
}

bool Prefetcher::predicts() const { return options_.mode == MissMode::exact || options_.mode == MissMode::soft; }

// The intent classifier on the prompt: the best-scored pairs, as many as there are slots, are
// queued before prefill computes.
void Prefetcher::begin_prompt(int32_t seq, const int32_t* ids, int64_t T, int64_t step, ExpertStore& store) {
    CHRONOS_ASSERT(seq >= 0 && seq < static_cast<int32_t>(streams_.size()), "a sequence outside the prefetcher's");
    Stream& st = streams_[static_cast<size_t>(seq)];
    st.live = true;
    st.have_pred = false;
    std::fill(st.pred_top.begin(), st.pred_top.end(), -1);
    std::fill(st.la_out.begin(), st.la_out.end(), 0.0f);
    std::fill(st.pred_next.begin(), st.pred_next.end(), 0.0f);
    std::fill(st.intent_set.begin(), st.intent_set.end(), 0);
    std::fill(st.intent_score.begin(), st.intent_score.end(), 0.0f);
    step_ = st.prompt_step = step;
    if (!predicts() || !options_.use_intent || !model_.intent.present) return;
    const ModelConfig& c = model_.config;
    const int64_t LE = c.n_moe_layers() * c.n_routed_experts;
    intent_forward(st.intent_score.data(), ids, T, model_);
    std::vector<int32_t>& pairs = intent_pairs_;
    for (int64_t p = 0; p < LE; ++p) {
        pairs[static_cast<size_t>(p)] = static_cast<int32_t>(p);
        residency_.set_score(static_cast<int32_t>(p), std::max(st.intent_score[static_cast<size_t>(p)], pair_score(static_cast<int32_t>(p), true)));
    }
    std::sort(pairs.begin(), pairs.end(), [&](int32_t a, int32_t b) { return st.intent_score[static_cast<size_t>(a)] > st.intent_score[static_cast<size_t>(b)]; });
    const int64_t n = std::min<int64_t>(store.slot_count(), LE);
    for (int64_t i = 0; i < n; ++i) st.intent_set[static_cast<size_t>(pairs[static_cast<size_t>(i)])] = 1;
    std::vector<float> scores(static_cast<size_t>(n));  // once per prompt
    for (int64_t i = 0; i < n; ++i) scores[static_cast<size_t>(i)] = st.intent_score[static_cast<size_t>(pairs[static_cast<size_t>(i)])];
    store.prefetch(pairs.data(), scores.data(), static_cast<int>(n));
}

void Prefetcher::end_sequence(int32_t seq) {
    CHRONOS_ASSERT(seq >= 0 && seq < static_cast<int32_t>(streams_.size()), "a sequence outside the prefetcher's");
    Stream& st = streams_[static_cast<size_t>(seq)];
    st.live = false;
    st.have_pred = false;
}

void Prefetcher::begin_token(int32_t seq) {
    const ModelConfig& c = model_.config;
    const int64_t L = c.n_moe_layers(), E = c.n_routed_experts, k = c.num_experts_per_tok;
    Stream& st = streams_[static_cast<size_t>(seq)];
    std::copy(st.pred_top.begin() + L * k, st.pred_top.end(), st.pred_top.begin());
    std::copy(st.pred_next.begin() + L * E, st.pred_next.end(), st.pred_next.begin());
}

void Prefetcher::count_recall(int32_t seq, int64_t l, const int32_t* top, Metrics& m) const {
    const ModelConfig& c = model_.config;
    const int64_t E = c.n_routed_experts, k = c.num_experts_per_tok;
    const Stream& st = streams_[static_cast<size_t>(seq)];
    for (int64_t j = 0; j < k; ++j) {
        const int32_t e = top[j];
        if (st.have_pred) {
            const int32_t* pred = &st.pred_top[static_cast<size_t>(l * k)];
            m.lookahead_named += std::find(pred, pred + k, e) != pred + k;
            m.lookahead_total += 1;
        }
        if (model_.intent.present && options_.use_intent) {
            m.intent_named += st.intent_set[static_cast<size_t>(l * E + e)];
            m.intent_total += 1;
        }
    }
}

void Prefetcher::route_prompt(int64_t l, const int32_t* top, int64_t T) {
    const ModelConfig& c = model_.config;
    const int64_t E = c.n_routed_experts, k = c.num_experts_per_tok;
    if (residency_.kind() == Residency::Kind::lru) return;  // the plain engine: acquire() marks what the prompt used
    std::fill(prompt_last_.begin(), prompt_last_.end(), -1);
    for (int64_t t = 0; t < T; ++t) {
        for (int64_t j = 0; j < k; ++j) {
            const size_t e = static_cast<size_t>(top[t * k + j]);
            prompt_run_[e] = prompt_last_[e] == t - 1 ? prompt_run_[e] + 1 : 1;
            prompt_last_[e] = t;
            prompt_rank_[e] = static_cast<int32_t>(j);
        }
    }
    // Oldest first, so that among pairs the policy values alike the least recently chosen goes.
    int n = 0;
    for (int64_t e = 0; e < E; ++e) {
        if (prompt_last_[static_cast<size_t>(e)] >= 0) prompt_order_[static_cast<size_t>(n++)] = static_cast<int32_t>(e);
    }
    std::sort(prompt_order_.begin(), prompt_order_.begin() + n,
              [&](int32_t a, int32_t b) { return prompt_last_[static_cast<size_t>(a)] < prompt_last_[static_cast<size_t>(b)]; });
    for (int i = 0; i < n; ++i) {
        const size_t e = static_cast<size_t>(prompt_order_[static_cast<size_t>(i)]);
        residency_.use_prompt(static_cast<int32_t>(l * E + static_cast<int64_t>(e)), static_cast<int32_t>(T - 1 - prompt_last_[e]), prompt_run_[e], prompt_rank_[e]);
    }
}

// A pair is a hit only if its read was complete when its layer first asked for it (`asked`, its
// state at the layer's start), however soon a wait for another pair of the layer completes it:
// a read under way at the ask is a late miss. Exact waits for a miss; soft uses a late read
// that has landed by the expert's turn and otherwise lets the shared expert stand in, keeping
// the read going for later tokens. Pipeline slack is recorded for the prefetched pairs decode
// uses.
bool Prefetcher::acquire(int32_t pair, uint64_t assignments, int32_t rank, bool decode, PairState asked, double ask_s,
                         ExpertStore& store, Metrics& m) {
    // Routed to now, whether it computes or not (a prompt's routing came through route_prompt).
    if (decode || residency_.kind() == Residency::Kind::lru) residency_.use(pair, rank);
    const bool hit = asked == PairState::ready;
    (decode ? (hit ? m.hits : m.misses) : (hit ? m.prefill_hits : m.prefill_misses)) += assignments;
    const bool prefetched = store.unused_prefetch(pair);  // before this layer uses it
    if (hit) {
        if (decode && prefetched) m.slack.add(1000.0 * (ask_s - store.ready_s(pair)));
        return true;
    }
    if (decode) count_miss(pair, asked, assignments, m);
    if (options_.mode == MissMode::soft && decode) {
        // A read under way may have landed while the layer's resident experts computed: then
        // the expert computes (still a miss: it was not ready when asked, and its slack is
        // negative). Otherwise the shared expert stands in and the read goes on for the tokens
        // after this one.
        if (asked == PairState::loading) {
            store.poll();
            if (store.ready(pair)) {
                if (prefetched) m.slack.add(1000.0 * (ask_s - store.ready_s(pair)));
                return true;
            }
        }
        m.fallbacks += assignments;
        if (asked == PairState::absent) {
            // Routing is sticky: the pair is likely needed again soon (the policy's reuse prior).
            const ModelConfig& c = model_.config;
            const size_t next = static_cast<size_t>(c.n_moe_layers() * c.n_routed_experts + pair);
            float score = 0.0f;
            for (const Stream& st : streams_) {
                if (st.live && st.have_pred) score = std::max(score, kWeightNextToken * st.pred_next[next]);
            }
            // Read after the layer's experts, with the layer's other fallbacks.
            CHRONOS_ASSERT(n_fallbacks_ < static_cast<int>(fallback_pairs_.size()), "more fallbacks than a layer has experts");
            fallback_pairs_[static_cast<size_t>(n_fallbacks_)] = pair;
            fallback_scores_[static_cast<size_t>(n_fallbacks_)] = score;
            ++n_fallbacks_;
        }
        return false;
    }
    const double waited = store.fetch_wait(pair);
    (decode ? m.stall_s : m.prefill_stall_s) += waited;
    // A prefetch that arrived after the ask: negative slack, the time it was late by.
    if (decode && prefetched && asked == PairState::loading) m.slack.add(1000.0 * (ask_s - store.ready_s(pair)));
    return true;
}

void Prefetcher::count_miss(int32_t pair, PairState asked, uint64_t assignments, Metrics& m) const {
    const ModelConfig& c = model_.config;
    const int64_t E = c.n_routed_experts, k = c.num_experts_per_tok;
    const size_t l = static_cast<size_t>(pair / E);
    const int32_t e = static_cast<int32_t>(pair % E);
    // A session sizes the counts before it decodes; only a caller's own fresh Metrics grows here.
    if (m.misses_by_layer.size() <= l) m.misses_by_layer.resize(static_cast<size_t>(c.n_moe_layers()), 0);
    m.misses_by_layer[l] += assignments;
    if (asked == PairState::loading) {
        m.misses_late += assignments;
        return;
    }
    // The prediction made for this token (any live sequence's), if the mode reads ahead from it:
    // ranked in the layer's top-k, and at what score against the bar schedule() applies to
    // t+1's candidates.
    bool named = false, above = false;
    for (const Stream& st : streams_) {
        if (!predicts() || !options_.use_lookahead) break;
        if (!st.live || !st.have_pred) continue;
        for (int64_t j = 0; j < k; ++j) {
            if (st.pred_top[static_cast<size_t>(static_cast<int64_t>(l) * k + j)] != e) continue;
            named = true;
            above = above || kWeightNextToken * st.pred_next[static_cast<size_t>(pair)] >= options_.prefetch_threshold;
        }
    }
    if (!named) {
        m.misses_unnamed += assignments;
    } else if (!above) {
        m.misses_below_bar += assignments;
    }
}

void Prefetcher::read_fallbacks(ExpertStore& store) {
    if (n_fallbacks_ == 0) return;
    store.prefetch(fallback_pairs_.data(), fallback_scores_.data(), n_fallbacks_);
    n_fallbacks_ = 0;
}

// The predictors' expectation for a pair (docs/runtime.md), the most any live sequence
// expects: the intent prior while that sequence's decode is within the horizon the classifier
// was trained for (it predicts the experts of the first `horizon` generated tokens; past them
// its scores are stale and would hold slots against the routing's recency), the lookahead's
// t+1 and t+2 probabilities, and, while the current token still needs its later layers, the
// prediction made for it. The reuse prior is the replacement policy's own (residency.h).
float Prefetcher::pair_score(int32_t pair, bool current_token) const {
    const ModelConfig& c = model_.config;
    const int64_t LE = c.n_moe_layers() * c.n_routed_experts;
    const size_t p = static_cast<size_t>(pair);
    float best = 0.0f;
    for (const Stream& st : streams_) {
        if (!st.live) continue;
        const bool intent = model_.intent.present && options_.use_intent && step_ - st.prompt_step < model_.intent.horizon;
        float s = intent ? kWeightIntent * st.intent_score[p] : 0.0f;
        if (st.have_pred) {
            if (current_token) s = std::max(s, st.pred_next[p]);
            for (int64_t kk = 0; kk < c.lookahead_steps; ++kk) s = std::max(s, lookahead_weight(kk) * st.la_out[static_cast<size_t>(kk * LE) + p]);
        }
        best = std::max(best, s);
    }
    return best;
}

// Keeps the first n lookahead candidates whose score reaches the prefetch threshold: when the
// disk is the bottleneck a wrong guess costs a read and evicts a pair that might be reused.
int Prefetcher::confident(int n) {
    int m = 0;
    for (int i = 0; i < n; ++i) {
        if (la_scores_[static_cast<size_t>(i)] < options_.prefetch_threshold) continue;
        la_pairs_[static_cast<size_t>(m)] = la_pairs_[static_cast<size_t>(i)];
        la_scores_[static_cast<size_t>(m)] = la_scores_[static_cast<size_t>(i)];
        ++m;
    }
    return m;
}

void Prefetcher::lookahead(int32_t seq, const float* h, const float* route, int64_t step,
                           const std::function<void(int64_t step, float* pred)>& on_predict) {
    const ModelConfig& c = model_.config;
    const int64_t L = c.n_moe_layers(), E = c.n_routed_experts, k = c.num_experts_per_tok;
    Stream& st = streams_[static_cast<size_t>(seq)];
    step_ = step;
    lookahead_forward(st.la_out.data(), h, route, model_.lookahead, c, la_in_.data(), la_hid_.data());
    // A head trained against the router's top-k choice at 1/k each (the default target) learns
    // p_e = P(e is chosen) / k at its optimum, so its distributions stay near or under 1/k; the
    // scores, the prefetch threshold and the oracle's 1.0 for a chosen pair are all on the scale
    // of the probability of being chosen, k * p_e (clamped: a fitted head may overshoot). (A
    // head trained on the router's softmax keeps its scale: its p_e is the expected router
    // probability.)
    if (c.lookahead_target == LookaheadTarget::router_topk) {
        for (float& p : st.la_out) p = std::min(1.0f, p * static_cast<float>(k));
    }
    if (on_predict) on_predict(step, st.la_out.data());
    // The t+1 prediction is kept to count its recall when t+1 computes.
    std::memcpy(&st.pred_next[static_cast<size_t>(L * E)], st.la_out.data(), static_cast<size_t>(L * E) * sizeof(float));
    for (int64_t l = 0; l < L; ++l) topk(&st.la_out[static_cast<size_t>(l * E)], E, k, &st.pred_top[static_cast<size_t>(L * k + l * k)]);
    st.have_pred = true;
}

void Prefetcher::schedule(ExpertStore& store) {
    if (!predicts() || !options_.use_lookahead) return;
    const ModelConfig& c = model_.config;
    const int64_t L = c.n_moe_layers(), E = c.n_routed_experts, k = c.num_experts_per_tok, K = c.lookahead_steps;
    // Eviction scores: what this token still needs (the previous prediction; nothing once the
    // head reads the last block), then t+1, t+2, with the intent classifier's prior underneath.
    const bool token_done = lookahead_reads_own_routing(c);  // the head ran after t's last block
    for (int32_t p = 0; p < static_cast<int32_t>(L * E); ++p) residency_.set_score(p, pair_score(p, /*current_token=*/!token_done));
    int n = 0;
    for (const Stream& st : streams_) {
        if (!st.live || !st.have_pred) continue;
        for (int64_t kk = 0; kk < K; ++kk) {
            for (int64_t l = 0; l < L; ++l) {
                const float* pr = &st.la_out[static_cast<size_t>((kk * L + l) * E)];
                int32_t* top = la_top_.data();  // [k], sized from the config
                topk(pr, E, k, top);
                for (int64_t j = 0; j < k; ++j) add_candidate(static_cast<int32_t>(l * E + top[j]), lookahead_weight(kk) * pr[top[j]], n);
            }
        }
    }
    clear_candidates(n);
    store.prefetch(la_pairs_.data(), la_scores_.data(), confident(n));
}

// After layer l computed token t, its pairs are no longer needed for t: their scores drop to
// what the lookahead says about t+1 and t+2, and the slots they free take t+1's predicted
// experts of this layer (of every live sequence), read while layers l+1 .. L-1 compute.
void Prefetcher::refill_layer(int64_t l, ExpertStore& store) {
    if (model_.lookahead.hidden == 0 || !options_.use_lookahead || !predicts()) return;
    const ModelConfig& c = model_.config;
    const int64_t L = c.n_moe_layers(), E = c.n_routed_experts, k = c.num_experts_per_tok;
    int n = 0;
    for (const Stream& st : streams_) {
        if (!st.live || !st.have_pred) continue;
        const int32_t* top = &st.pred_top[static_cast<size_t>(L * k + l * k)];  // t+1's prediction for this layer
        for (int64_t j = 0; j < k; ++j) add_candidate(static_cast<int32_t>(l * E + top[j]), kWeightNextToken * st.la_out[static_cast<size_t>(l * E + top[j])], n);
    }
    clear_candidates(n);
    if (n == 0) return;
    for (int64_t e = 0; e < E; ++e) {
        const int32_t p = static_cast<int32_t>(l * E + e);
        residency_.set_score(p, pair_score(p, /*current_token=*/false));
    }
    store.prefetch(la_pairs_.data(), la_scores_.data(), confident(n));
}

}  // namespace chronos::rt
