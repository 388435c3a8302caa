// session.cpp: see session.h. Shapes in comments: T rows in the batch, H hidden, E routed
// experts, k experts per token, P context length.
#include "runtime/session.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "runtime/kernels.h"

namespace chronos::rt {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

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

Session::Session(const Model& model, const SessionOptions& options)
    : model_(model),
      options_(options),
      residency_(model.config.num_hidden_layers, model.config.n_routed_experts,
                 options.mode == MissMode::lru ? Residency::Kind::lru : Residency::Kind::chronos, options.reuse_prior) {
    kernel_isa();  // reads CHRONOS_KERNELS here, where a bad value can throw, not inside a parallel region
    const ModelConfig& c = model_.config;
    const int64_t H = c.hidden_size, E = c.n_routed_experts, k = c.num_experts_per_tok, L = c.num_hidden_layers;
    const int64_t F = c.moe_intermediate_size, Fs = c.n_shared_experts * F, P = c.max_position_embeddings;
    const int64_t nh = c.num_attention_heads, nkv = c.num_key_value_heads, hd = c.head_dim;
    const int64_t r = c.kv_lora_rank, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim;

    // The store cuts the budget into whole slots and never allocates more than one per pair.
    const uint64_t budget = (options_.mode == MissMode::resident || options_.ram_budget == 0) ? kBudgetAll : options_.ram_budget;
    store_ = std::make_unique<ExpertStore>(model_.manifest, model_.dir, budget, k, options_.io, &residency_);
    if (options_.mode == MissMode::resident) {
        store_->load_all();
    } else if (options_.preload) {
        store_->preload(store_->pairs());
    }
    metrics_.bytes_read_load = store_->counters().bytes_read;

    tmax_ = P;
    auto sized = [](std::vector<float>& v, int64_t n) { v.assign(static_cast<size_t>(std::max<int64_t>(n, 1)), 0.0f); };
    sized(h_, tmax_ * H);
    sized(a_, tmax_ * H);
    sized(att_, tmax_ * H);
    sized(q_, tmax_ * nh * std::max(dn + dr, hd));
    sized(kv_, tmax_ * (r + dr));
    sized(k_, tmax_ * nkv * hd);
    sized(v_, tmax_ * nkv * hd);
    sized(heads_, tmax_ * nh * std::max(dv, hd));
    sized(probs_, tmax_ * E);
    sized(topw_, tmax_ * k);
    sized(xs_, tmax_ * H);
    sized(g_, tmax_ * F);
    sized(u_, tmax_ * F);
    sized(y_, tmax_ * k * H);  // one row per assignment, summed in expert order
    sized(sg_, tmax_ * Fs);
    sized(su_, tmax_ * Fs);
    if (model_.manifest.dtype != DType::F32) sized(conv_, 3 * H * F);
    topi_.assign(static_cast<size_t>(tmax_ * k), 0);
    count_.assign(static_cast<size_t>(E), 0);
    start_.assign(static_cast<size_t>(E + 1), 0);
    rows_.assign(static_cast<size_t>(tmax_ * k), 0);
    rows_w_.assign(static_cast<size_t>(tmax_ * k), 0.0f);
    order_.assign(static_cast<size_t>(E), 0);
    asked_.assign(static_cast<size_t>(E), PairState::absent);
    avail_.assign(static_cast<size_t>(E), 1.0f);
    scratch_per_thread_ = 2 * r + P + 16;
    sized(thread_scratch_, scratch_per_thread_ * omp_get_max_threads());
    sized(logits_, c.vocab_size);
    sized(h_la_, H);
    sized(route_prev_, L * E);
    sized(route_cur_, L * E);
    sized(route_prev2_, L * E);
    const int64_t K = c.lookahead_steps;
    sized(la_in_, H + L * E);
    sized(la_hid_, model_.lookahead.hidden);
    sized(la_out_, K * L * E);
    sized(pred_next_, 2 * L * E);  // [cur | next] predicted router probabilities
    sized(intent_score_, L * E);
    pred_top_.assign(static_cast<size_t>(2 * L * k), -1);  // [cur | next] predicted top-k per layer
    la_top_.assign(static_cast<size_t>(k), 0);
    la_pairs_.assign(static_cast<size_t>(std::max<int64_t>(K, 1) * L * k), 0);
    sized(la_scores_, std::max<int64_t>(K, 1) * L * k);
    intent_set_.assign(static_cast<size_t>(L * E), 0);

    for (int64_t l = 0; l < L; ++l) {
        const AttentionKind kind = c.attention_pattern[static_cast<size_t>(l)];
        if (kind == AttentionKind::mla) {
            cache_a_.emplace_back(static_cast<size_t>(P * r));
            cache_b_.emplace_back(static_cast<size_t>(P * dr));
            ring_pos_.emplace_back();
        } else {
            const int64_t rows = kind == AttentionKind::swa ? std::min(c.sliding_window, P) : P;
            cache_a_.emplace_back(static_cast<size_t>(rows * nkv * hd));
            cache_b_.emplace_back(static_cast<size_t>(rows * nkv * hd));
            ring_pos_.emplace_back(static_cast<size_t>(rows), -1);
        }
    }
}

Session::~Session() = default;

void prediction_from_routes(const int32_t* routes, int64_t n, const ModelConfig& c, int64_t step, float* pred) {
    const int64_t L = c.num_hidden_layers, E = c.n_routed_experts, k = c.num_experts_per_tok;
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

void Session::prefill(const int32_t* ids, int64_t T, float* logits_all) {
    const ModelConfig& c = model_.config;
    if (T < 1) fail("empty prompt");
    if (T > c.max_position_embeddings) {
        fail("prompt of {} tokens is longer than the model's context of {} tokens", T, c.max_position_embeddings);
    }
    pos_ = 0;
    std::fill(route_prev_.begin(), route_prev_.end(), 0.0f);
    std::fill(pred_top_.begin(), pred_top_.end(), -1);
    have_pred_ = false;
    for (auto& rp : ring_pos_) std::fill(rp.begin(), rp.end(), -1);
    const auto t0 = Clock::now();
    const uint64_t bytes0 = store_->counters().bytes_read;
    if ((options_.mode == MissMode::exact || options_.mode == MissMode::soft) && options_.use_intent && model_.intent.present) {
        intent_prefetch(ids, T);
    }
    forward(ids, T, Phase::prefill, logits_all);
    metrics_.prompt_tokens += T;
    metrics_.prefill_s += seconds_since(t0);
    metrics_.bytes_read_prefill += store_->counters().bytes_read - bytes0;
}

void Session::decode(int32_t id) {
    if (pos_ >= model_.config.max_position_embeddings) {
        fail("the context of {} tokens is full", model_.config.max_position_embeddings);
    }
    const auto t0 = Clock::now();
    const uint64_t bytes0 = store_->counters().bytes_read, reads0 = store_->counters().reads;
    ++step_;
    forward(&id, 1, Phase::decode, nullptr);
    metrics_.decode_tokens += 1;
    metrics_.decode_s += seconds_since(t0);
    metrics_.bytes_read_decode += store_->counters().bytes_read - bytes0;
    metrics_.reads_decode += store_->counters().reads - reads0;
}

void Session::forward(const int32_t* ids, int64_t T, Phase phase, float* logits_all) {
    const ModelConfig& c = model_.config;
    const int64_t H = c.hidden_size, L = c.num_hidden_layers, E = c.n_routed_experts, k = c.num_experts_per_tok;
    CHRONOS_ASSERT(T <= tmax_ && pos_ + T <= c.max_position_embeddings, "batch past the context");
    for (int64_t t = 0; t < T; ++t) {
        if (ids[t] < 0 || ids[t] >= c.vocab_size) fail("token id {} is outside the vocabulary of {}", ids[t], c.vocab_size);
        std::memcpy(&h_[static_cast<size_t>(t * H)], model_.embed + static_cast<int64_t>(ids[t]) * H, static_cast<size_t>(H) * sizeof(float));
    }
    // The head reads block j's output with the full routing of the latest token that has one:
    // t itself when j is the last block, else t-1 (model.h, LookaheadHead).
    const int64_t j_la = c.lookahead_input_layer;
    const bool own_route = lookahead_reads_own_routing(c);
    // The lookahead's prediction for this token becomes "current"; the new one goes to "next".
    if (phase == Phase::decode) {
        std::copy(pred_top_.begin() + L * k, pred_top_.end(), pred_top_.begin());
        std::copy(pred_next_.begin() + L * E, pred_next_.end(), pred_next_.begin());
    }
    for (int64_t l = 0; l < L; ++l) {
        const LayerWeights& w = model_.layers[static_cast<size_t>(l)];
        rmsnorm(h_.data(), w.input_norm, a_.data(), T, H, c.rms_norm_eps);
        attention(l, T);
        for (int64_t i = 0; i < T * H; ++i) h_[static_cast<size_t>(i)] += att_[static_cast<size_t>(i)];
        rmsnorm(h_.data(), w.post_norm, a_.data(), T, H, c.rms_norm_eps);
        moe(l, T, phase);
        if (l == j_la) {
            std::memcpy(h_la_.data(), &h_[static_cast<size_t>((T - 1) * H)], static_cast<size_t>(H) * sizeof(float));
            // Decode: name the experts of t+1..t+K now, so they load while layers j+1..L-1 of
            // t (and, past the last block, the lm_head and t+1's first layers) compute.
            if (phase == Phase::decode && model_.lookahead.hidden > 0) lookahead_prefetch(h_la_.data(), own_route ? route_cur_.data() : route_prev_.data());
        }
        // Layers at or past the head's block have a fresh t+1 prediction to refill from.
        if (phase == Phase::decode && l >= j_la) refill_layer(l);
    }
    pos_ += T;
    if (phase == Phase::prefill && model_.lookahead.hidden > 0) {
        // The last prompt token names the first generated tokens' experts.
        if (T < 2) std::fill(route_prev2_.begin(), route_prev2_.end(), 0.0f);
        lookahead_prefetch(h_la_.data(), own_route ? route_cur_.data() : route_prev2_.data());
    }
    route_prev_.swap(route_cur_);

    const int64_t V = c.vocab_size;
    if (logits_all != nullptr) {
        rmsnorm(h_.data(), model_.final_norm, a_.data(), T, H, c.rms_norm_eps);
        matmul_wt(a_.data(), model_.lm_head, logits_all, T, H, V);
        std::memcpy(logits_.data(), logits_all + (T - 1) * V, static_cast<size_t>(V) * sizeof(float));
    } else {
        rmsnorm(&h_[static_cast<size_t>((T - 1) * H)], model_.final_norm, a_.data(), 1, H, c.rms_norm_eps);
        matmul_wt(a_.data(), model_.lm_head, logits_.data(), 1, H, V);
    }
}

// a_ [T, H] -> att_ [T, H] for rows at positions pos_ .. pos_ + T - 1; appends to the cache.
void Session::attention(int64_t l, int64_t T) {
    const ModelConfig& c = model_.config;
    const LayerWeights& w = model_.layers[static_cast<size_t>(l)];
    const int64_t H = c.hidden_size, nh = c.num_attention_heads;
    float* scratch = thread_scratch_.data();
    const int64_t per_thread = scratch_per_thread_;
    if (w.kind == AttentionKind::mla) {
        // MLA with absorbed projections: the cache holds the normalised latent c [P, r] and the
        // rotated rope key [P, dr]. Per head, q_lat = W_uk^T q_nope scores against c directly, and
        // the value is W_uv (sum_s p_s c_s): the latent is never expanded to keys and values.
        const int64_t r = c.kv_lora_rank, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim;
        const int64_t qw = dn + dr;
        float* ckv = cache_a_[static_cast<size_t>(l)].data();
        float* krope = cache_b_[static_cast<size_t>(l)].data();
        matmul_wt(a_.data(), w.q_proj, q_.data(), T, H, nh * qw);        // [T, nh*(dn+dr)]
        matmul_wt(a_.data(), w.kv_a, kv_.data(), T, H, r + dr);          // [T, r+dr]
        for (int64_t t = 0; t < T; ++t) {
            const int64_t p = pos_ + t;
            rmsnorm(&kv_[static_cast<size_t>(t * (r + dr))], w.kv_a_norm, ckv + p * r, 1, r, c.rms_norm_eps);
            std::memcpy(krope + p * dr, &kv_[static_cast<size_t>(t * (r + dr) + r)], static_cast<size_t>(dr) * sizeof(float));
            rope_rotate(krope + p * dr, dr, p, c.rope_theta);
            for (int64_t h = 0; h < nh; ++h) rope_rotate(&q_[static_cast<size_t>(t * nh * qw + h * qw + dn)], dr, p, c.rope_theta);
        }
        const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(qw)));
#pragma omp parallel for schedule(dynamic)
        for (int64_t idx = 0; idx < T * nh; ++idx) {
            const int64_t t = idx / nh, h = idx % nh, S = pos_ + t + 1;
            float* qlat = scratch + omp_get_thread_num() * per_thread;
            float* olat = qlat + r;
            float* sc = olat + r;
            const float* qn = &q_[static_cast<size_t>(t * nh * qw + h * qw)];
            const float* qr = qn + dn;
            const float* w_uk = w.kv_b + h * (dn + dv) * r;  // [dn, r]
            const float* w_uv = w_uk + dn * r;                 // [dv, r]
            std::fill(qlat, qlat + r, 0.0f);
            for (int64_t i = 0; i < dn; ++i) {
                const float qi = qn[i];
                const float* row = w_uk + i * r;
                for (int64_t j = 0; j < r; ++j) qlat[j] += qi * row[j];
            }
            gemv(ckv, qlat, sc, S, r);                           // latent part of the scores
            gemv(krope, qr, sc, S, dr, /*accumulate=*/true);     // + rope part
            for (int64_t s = 0; s < S; ++s) sc[s] *= scale;
            softmax(sc, S);
            std::fill(olat, olat + r, 0.0f);
            for (int64_t s = 0; s < S; ++s) {
                const float ps = sc[s];
                const float* cs = ckv + s * r;
                for (int64_t j = 0; j < r; ++j) olat[j] += ps * cs[j];
            }
            float* out = &heads_[static_cast<size_t>(t * nh * dv + h * dv)];
            gemv(w_uv, olat, out, dv, r);
        }
        matmul_wt(heads_.data(), w.o_proj, att_.data(), T, nh * dv, H);
        return;
    }
    // GQA, full causal or sliding window. The window cache is a ring of `window` rows; positions
    // keep counting, so RoPE stays relative after the ring wraps. Each row writes its key and
    // value and then attends, so a long prompt never sees a row that a later one overwrote.
    const int64_t nkv = c.num_key_value_heads, hd = c.head_dim, group = nh / nkv;
    const int64_t window = w.kind == AttentionKind::swa ? c.sliding_window : 0;
    float* kc = cache_a_[static_cast<size_t>(l)].data();
    float* vc = cache_b_[static_cast<size_t>(l)].data();
    const int64_t rows = static_cast<int64_t>(ring_pos_[static_cast<size_t>(l)].size());
    matmul_wt(a_.data(), w.wq, q_.data(), T, H, nh * hd);
    matmul_wt(a_.data(), w.wk, k_.data(), T, H, nkv * hd);
    matmul_wt(a_.data(), w.wv, v_.data(), T, H, nkv * hd);
    const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
    for (int64_t t = 0; t < T; ++t) {
        const int64_t p = pos_ + t;
        for (int64_t h = 0; h < nh; ++h) rope_rotate(&q_[static_cast<size_t>((t * nh + h) * hd)], hd, p, c.rope_theta);
        for (int64_t g = 0; g < nkv; ++g) rope_rotate(&k_[static_cast<size_t>((t * nkv + g) * hd)], hd, p, c.rope_theta);
        const int64_t row = window > 0 ? p % rows : p;
        std::memcpy(kc + row * nkv * hd, &k_[static_cast<size_t>(t * nkv * hd)], static_cast<size_t>(nkv * hd) * sizeof(float));
        std::memcpy(vc + row * nkv * hd, &v_[static_cast<size_t>(t * nkv * hd)], static_cast<size_t>(nkv * hd) * sizeof(float));
        ring_pos_[static_cast<size_t>(l)][static_cast<size_t>(row)] = p;
        const int64_t S = window > 0 ? std::min(p + 1, rows) : p + 1;  // rows holding p-window < pos <= p
#pragma omp parallel for schedule(static)
        for (int64_t h = 0; h < nh; ++h) {
            float* sc = scratch + omp_get_thread_num() * per_thread;
            const float* qh = &q_[static_cast<size_t>((t * nh + h) * hd)];
            const int64_t g = h / group;
            for (int64_t s = 0; s < S; ++s) sc[s] = dot(qh, kc + (s * nkv + g) * hd, hd) * scale;
            softmax(sc, S);
            float* out = &heads_[static_cast<size_t>((t * nh + h) * hd)];
            std::fill(out, out + hd, 0.0f);
            for (int64_t s = 0; s < S; ++s) {
                const float ps = sc[s];
                const float* vs = vc + (s * nkv + g) * hd;
                for (int64_t j = 0; j < hd; ++j) out[j] += ps * vs[j];
            }
        }
    }
    matmul_wt(heads_.data(), w.o_proj, att_.data(), T, nh * hd, H);
}

// A pair is a hit only if its read was complete when its layer first asked for it (`asked`, its
// state at the layer's start), however soon a wait for another pair of the layer completes it:
// a read under way at the ask is a late miss. Exact waits for a miss; soft uses a late read
// that has landed by the expert's turn and otherwise lets the shared expert stand in, keeping
// the read going for later tokens. Returns whether the expert computes. Pipeline slack is
// recorded for the prefetched pairs decode uses.
bool Session::acquire(int32_t pair, uint64_t assignments, Phase phase, PairState asked, double ask_s) {
    const bool decode = phase == Phase::decode;
    const bool hit = asked == PairState::ready;
    (decode ? (hit ? metrics_.hits : metrics_.misses) : (hit ? metrics_.prefill_hits : metrics_.prefill_misses)) += assignments;
    const bool prefetched = store_->unused_prefetch(pair);  // before this layer uses it
    if (hit) {
        if (decode && prefetched) metrics_.slack.add(1000.0 * (ask_s - store_->ready_s(pair)));
        return true;
    }
    if (decode && asked == PairState::loading) metrics_.misses_late += assignments;
    if (options_.mode == MissMode::soft && decode) {
        // A read under way may have landed while the layer's resident experts computed: then
        // the expert computes (still a miss: it was not ready when asked, and its slack is
        // negative). Otherwise the shared expert stands in and the read goes on for the tokens
        // after this one.
        if (asked == PairState::loading) {
            store_->poll();
            if (store_->ready(pair)) {
                if (prefetched) metrics_.slack.add(1000.0 * (ask_s - store_->ready_s(pair)));
                return true;
            }
        }
        metrics_.fallbacks += assignments;
        if (asked == PairState::absent) {
            // Routing is sticky: the pair is likely needed again soon (the policy's reuse prior).
            const float score = have_pred_ ? 0.9f * pred_next_[static_cast<size_t>(model_.config.num_hidden_layers * model_.config.n_routed_experts + pair)] : 0.0f;
            store_->prefetch(&pair, &score, 1);
        }
        return false;
    }
    const double waited = store_->fetch_wait(pair);
    (decode ? metrics_.stall_s : metrics_.prefill_stall_s) += waited;
    // A prefetch that arrived after the ask: negative slack, the time it was late by.
    if (decode && prefetched && asked == PairState::loading) metrics_.slack.add(1000.0 * (ask_s - store_->ready_s(pair)));
    return true;
}

// rows [n] of a_ through expert `pair` -> out [n, H] (unweighted).
void Session::expert_forward(int32_t pair, const int32_t* rows, float* out, int64_t n) {
    const ModelConfig& c = model_.config;
    const int64_t H = c.hidden_size, F = c.moe_intermediate_size;
    const uint8_t* d = store_->data(pair);
    const float* wg;
    if (model_.manifest.dtype == DType::F32) {
        wg = reinterpret_cast<const float*>(d);
    } else {
        const auto* bits = reinterpret_cast<const uint16_t*>(d);
        if (model_.manifest.dtype == DType::BF16) {
            bf16_to_f32_n(bits, conv_.data(), 3 * H * F);
        } else {
            f16_to_f32_n(bits, conv_.data(), 3 * H * F);
        }
        wg = conv_.data();
    }
    const float* wu = wg + F * H;  // gate [F, H] | up [F, H] | down [H, F]
    const float* wd = wu + F * H;
    for (int64_t i = 0; i < n; ++i) {
        std::memcpy(&xs_[static_cast<size_t>(i * H)], &a_[static_cast<size_t>(rows[i] * H)], static_cast<size_t>(H) * sizeof(float));
    }
    matmul2_wt(xs_.data(), wg, g_.data(), wu, u_.data(), n, H, F);
    silu_mul(g_.data(), u_.data(), n * F);
    matmul_wt(g_.data(), wd, out, n, F, H);
}

// a_ [T, H] (post-attention norm) -> h_ += sum_i w_i a_i E_i(a_) + shared(a_).
void Session::moe(int64_t l, int64_t T, Phase phase) {
    const ModelConfig& c = model_.config;
    const LayerWeights& w = model_.layers[static_cast<size_t>(l)];
    const int64_t H = c.hidden_size, E = c.n_routed_experts, k = c.num_experts_per_tok;
    // Router: softmax over all experts, top-k, renormalised.
    matmul_wt(a_.data(), w.gate, probs_.data(), T, H, E);
    for (int64_t t = 0; t < T; ++t) {
        float* p = &probs_[static_cast<size_t>(t * E)];
        softmax(p, E);
        int32_t* top = &topi_[static_cast<size_t>(t * k)];
        topk(p, E, k, top);
        float sum = 0;
        for (int64_t j = 0; j < k; ++j) sum += p[top[j]];
        for (int64_t j = 0; j < k; ++j) topw_[static_cast<size_t>(t * k + j)] = c.norm_topk_prob ? p[top[j]] / sum : p[top[j]];
    }
    std::memcpy(&route_cur_[static_cast<size_t>(l * E)], &probs_[static_cast<size_t>((T - 1) * E)], static_cast<size_t>(E) * sizeof(float));
    if (T >= 2) {
        std::memcpy(&route_prev2_[static_cast<size_t>(l * E)], &probs_[static_cast<size_t>((T - 2) * E)], static_cast<size_t>(E) * sizeof(float));
    }
    if (phase == Phase::decode) {
        // Recall of the predictions, counted against what the router chose.
        for (int64_t j = 0; j < k; ++j) {
            const int32_t e = topi_[static_cast<size_t>(j)];
            if (have_pred_) {
                const int32_t* pred = &pred_top_[static_cast<size_t>(l * k)];
                metrics_.lookahead_named += std::find(pred, pred + k, e) != pred + k;
                metrics_.lookahead_total += 1;
            }
            if (model_.intent.present && options_.use_intent) {
                metrics_.intent_named += intent_set_[static_cast<size_t>(l * E + e)];
                metrics_.intent_total += 1;
            }
        }
    }
    // Group the T*k assignments by expert (counting sort).
    std::fill(count_.begin(), count_.end(), 0);
    for (int64_t i = 0; i < T * k; ++i) count_[static_cast<size_t>(topi_[static_cast<size_t>(i)])]++;
    start_[0] = 0;
    for (int64_t e = 0; e < E; ++e) start_[static_cast<size_t>(e + 1)] = start_[static_cast<size_t>(e)] + count_[static_cast<size_t>(e)];
    std::fill(count_.begin(), count_.end(), 0);
    for (int64_t i = 0; i < T * k; ++i) {
        const int32_t e = topi_[static_cast<size_t>(i)];
        const int32_t at = start_[static_cast<size_t>(e)] + count_[static_cast<size_t>(e)]++;
        rows_[static_cast<size_t>(at)] = static_cast<int32_t>(i / k);
        rows_w_[static_cast<size_t>(at)] = topw_[static_cast<size_t>(i)];
    }
    residency_.at(step_, l);
    // The layer asks for its experts now: their states at this moment decide hits and misses.
    // Resident experts compute first, then those being read, then the rest: compute overlaps
    // the reads.
    if (options_.mode != MissMode::resident) store_->poll();
    const double ask_s = std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
    int64_t n_order = 0;
    for (int64_t e = 0; e < E; ++e) {
        const int32_t pair = static_cast<int32_t>(l * E + e);
        asked_[static_cast<size_t>(e)] = store_->ready(pair) ? PairState::ready : store_->loading(pair) ? PairState::loading : PairState::absent;
    }
    for (PairState pass : {PairState::ready, PairState::loading, PairState::absent}) {
        for (int64_t e = 0; e < E; ++e) {
            if (count_[static_cast<size_t>(e)] > 0 && asked_[static_cast<size_t>(e)] == pass) order_[static_cast<size_t>(n_order++)] = static_cast<int32_t>(e);
        }
    }
    std::fill(avail_.begin(), avail_.end(), 1.0f);
    for (int64_t i = 0; i < n_order; ++i) {
        const int32_t e = order_[static_cast<size_t>(i)];
        const int32_t pair = static_cast<int32_t>(l * E + e);
        const int32_t n = count_[static_cast<size_t>(e)];
        residency_.use(pair);  // routed to now, whether it computes or not
        const bool available = acquire(pair, static_cast<uint64_t>(n), phase, asked_[static_cast<size_t>(e)], ask_s);
        avail_[static_cast<size_t>(e)] = available ? 1.0f : 0.0f;
        if (!available) continue;  // its weight times availability 0: the term is gone
        store_->pin(pair);
        store_->mark_used(pair);
        const int32_t s = start_[static_cast<size_t>(e)];
        expert_forward(pair, &rows_[static_cast<size_t>(s)], &y_[static_cast<size_t>(s) * static_cast<size_t>(H)], n);
        store_->unpin(pair);
    }
    // Sum in expert order whatever order the experts arrived in, so `exact` is bit-identical
    // to `resident`.
    for (int64_t e = 0; e < E; ++e) {
        if (avail_[static_cast<size_t>(e)] == 0.0f) continue;
        for (int32_t i = start_[static_cast<size_t>(e)]; i < start_[static_cast<size_t>(e + 1)]; ++i) {
            float* dst = &h_[static_cast<size_t>(rows_[static_cast<size_t>(i)] * H)];
            const float* src = &y_[static_cast<size_t>(i) * static_cast<size_t>(H)];
            const float wi = rows_w_[static_cast<size_t>(i)];
            for (int64_t j = 0; j < H; ++j) dst[j] += wi * src[j];
        }
    }
    if (w.shared_gate != nullptr) {
        const int64_t Fs = c.n_shared_experts * c.moe_intermediate_size;
        matmul2_wt(a_.data(), w.shared_gate, sg_.data(), w.shared_up, su_.data(), T, H, Fs);
        silu_mul(sg_.data(), su_.data(), T * Fs);
        matmul_wt(sg_.data(), w.shared_down, h_.data(), T, Fs, H, /*accumulate=*/true);
    }
    if (on_route) on_route(l, topi_.data(), T, avail_.data());
}

// After layer l computed token t, its pairs are no longer needed for t: their scores drop to
// what the lookahead says about t+1 and t+2, and the slots they free take t+1's predicted
// experts of this layer, read while layers l+1 .. L-1 compute.
void Session::refill_layer(int64_t l) {
    if (!have_pred_ || model_.lookahead.hidden == 0 || !options_.use_lookahead) return;
    if (!(options_.mode == MissMode::exact || options_.mode == MissMode::soft)) return;
    const ModelConfig& c = model_.config;
    const int64_t L = c.num_hidden_layers, E = c.n_routed_experts, k = c.num_experts_per_tok;
    for (int64_t e = 0; e < E; ++e) {
        const int32_t p = static_cast<int32_t>(l * E + e);
        residency_.set_score(p, pair_score(p, /*current_token=*/false));
    }
    const int32_t* top = &pred_top_[static_cast<size_t>(L * k + l * k)];  // t+1's prediction for this layer
    for (int64_t j = 0; j < k; ++j) {
        la_pairs_[static_cast<size_t>(j)] = static_cast<int32_t>(l * E + top[j]);
        la_scores_[static_cast<size_t>(j)] = 0.9f * la_out_[static_cast<size_t>(l * E + top[j])];
    }
    store_->prefetch(la_pairs_.data(), la_scores_.data(), confident(static_cast<int>(k)));
}

// The predictors' expectation for a pair (docs/runtime.md): the intent prior, the lookahead's
// t+1 and t+2 probabilities, and, while the current token still needs its later layers, the
// prediction made for it. The reuse prior is the replacement policy's own (residency.h).
float Session::pair_score(int32_t pair, bool current_token) const {
    const ModelConfig& c = model_.config;
    const int64_t LE = c.num_hidden_layers * c.n_routed_experts;
    const size_t p = static_cast<size_t>(pair);
    float s = model_.intent.present && options_.use_intent ? 0.3f * intent_score_[p] : 0.0f;
    if (current_token) s = std::max(s, pred_next_[p]);
    for (int64_t kk = 0; kk < c.lookahead_steps; ++kk) s = std::max(s, (kk == 0 ? 0.9f : 0.8f) * la_out_[static_cast<size_t>(kk * LE) + p]);
    return s;
}

// Keeps the first n lookahead candidates whose score reaches the prefetch threshold: when the
// disk is the bottleneck a wrong guess costs a read and evicts a pair that might be reused.
int Session::confident(int n) {
    int m = 0;
    for (int i = 0; i < n; ++i) {
        if (la_scores_[static_cast<size_t>(i)] < options_.prefetch_threshold) continue;
        la_pairs_[static_cast<size_t>(m)] = la_pairs_[static_cast<size_t>(i)];
        la_scores_[static_cast<size_t>(m)] = la_scores_[static_cast<size_t>(i)];
        ++m;
    }
    return m;
}

// h [H] after block lookahead_input_layer and a full routing [L*E] (t-1's, or t's own when the
// head reads the last block) -> the lookahead's distributions for t+1..t+K; queues their top-k
// experts (exact and soft modes).
void Session::lookahead_prefetch(const float* h, const float* route) {
    const ModelConfig& c = model_.config;
    const int64_t H = c.hidden_size, L = c.num_hidden_layers, E = c.n_routed_experts, k = c.num_experts_per_tok;
    const int64_t K = c.lookahead_steps, D = model_.lookahead.hidden;
    rmsnorm(h, model_.lookahead.norm, la_in_.data(), 1, H, c.rms_norm_eps);
    std::memcpy(&la_in_[static_cast<size_t>(H)], route, static_cast<size_t>(L * E) * sizeof(float));
    matmul_wt(la_in_.data(), model_.lookahead.up, la_hid_.data(), 1, H + L * E, D);
    for (int64_t i = 0; i < D; ++i) la_hid_[static_cast<size_t>(i)] = la_hid_[static_cast<size_t>(i)] / (1.0f + std::exp(-la_hid_[static_cast<size_t>(i)]));
    matmul_wt(la_hid_.data(), model_.lookahead.out, la_out_.data(), 1, D, K * L * E);  // [K, L, E]
    for (int64_t i = 0; i < K * L; ++i) softmax(&la_out_[static_cast<size_t>(i * E)], E);
    if (on_predict) on_predict(step_, la_out_.data());
    // The t+1 prediction is kept to count its recall when t+1 computes.
    std::memcpy(&pred_next_[static_cast<size_t>(L * E)], la_out_.data(), static_cast<size_t>(L * E) * sizeof(float));
    for (int64_t l = 0; l < L; ++l) topk(&la_out_[static_cast<size_t>(l * E)], E, k, &pred_top_[static_cast<size_t>(L * k + l * k)]);
    have_pred_ = true;
    if (!(options_.mode == MissMode::exact || options_.mode == MissMode::soft) || !options_.use_lookahead) return;
    // Eviction scores: what this token still needs (the previous prediction; nothing once the
    // head reads the last block), then t+1, t+2, with the intent classifier's prior underneath.
    const bool token_done = lookahead_reads_own_routing(c);  // the head ran after t's last block
    for (int32_t p = 0; p < static_cast<int32_t>(L * E); ++p) residency_.set_score(p, pair_score(p, /*current_token=*/!token_done));
    int n = 0;
    for (int64_t kk = 0; kk < K; ++kk) {
        for (int64_t l = 0; l < L; ++l) {
            const float* pr = &la_out_[static_cast<size_t>((kk * L + l) * E)];
            int32_t* top = la_top_.data();  // [k], sized from the config
            topk(pr, E, k, top);
            for (int64_t j = 0; j < k; ++j) {
                la_pairs_[static_cast<size_t>(n)] = static_cast<int32_t>(l * E + top[j]);
                la_scores_[static_cast<size_t>(n)] = (kk == 0 ? 0.9f : 0.8f) * pr[top[j]];
                ++n;
            }
        }
    }
    store_->prefetch(la_pairs_.data(), la_scores_.data(), confident(n));
}

// The intent classifier on the prompt: features [mean embedding | mean of the last tokens' embeddings]
// -> SiLU MLP -> sigmoid score per pair. The best-scored pairs, as many as there are slots,
// are queued before prefill computes.
void Session::intent_prefetch(const int32_t* ids, int64_t T) {
    const ModelConfig& c = model_.config;
    const IntentWeights& iw = model_.intent;
    const int64_t H = c.hidden_size, L = c.num_hidden_layers, E = c.n_routed_experts, D = iw.hidden;
    std::vector<float> f(static_cast<size_t>(2 * H), 0.0f), hid(static_cast<size_t>(D));  // once per prompt
    const int64_t tail = std::min(iw.tail_tokens, T);
    for (int64_t t = 0; t < T; ++t) {
        const float* row = model_.embed + static_cast<int64_t>(ids[t]) * H;
        for (int64_t j = 0; j < H; ++j) {
            f[static_cast<size_t>(j)] += row[j] / static_cast<float>(T);
            if (t >= T - tail) f[static_cast<size_t>(H + j)] += row[j] / static_cast<float>(tail);
        }
    }
    for (int64_t i = 0; i < D; ++i) {
        float z = iw.up_b[static_cast<size_t>(i)] + dot(&iw.up_w[static_cast<size_t>(i * 2 * H)], f.data(), 2 * H);
        hid[static_cast<size_t>(i)] = z / (1.0f + std::exp(-z));
    }
    std::vector<int32_t> pairs(static_cast<size_t>(L * E));
    for (int64_t p = 0; p < L * E; ++p) {
        const float z = iw.out_b[static_cast<size_t>(p)] + dot(&iw.out_w[static_cast<size_t>(p * D)], hid.data(), D);
        intent_score_[static_cast<size_t>(p)] = 1.0f / (1.0f + std::exp(-z));
        pairs[static_cast<size_t>(p)] = static_cast<int32_t>(p);
        residency_.set_score(static_cast<int32_t>(p), intent_score_[static_cast<size_t>(p)]);
    }
    std::sort(pairs.begin(), pairs.end(), [&](int32_t a, int32_t b) { return intent_score_[static_cast<size_t>(a)] > intent_score_[static_cast<size_t>(b)]; });
    const int64_t n = std::min<int64_t>(store_->slot_count(), L * E);
    std::fill(intent_set_.begin(), intent_set_.end(), 0);
    std::vector<float> scores(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        intent_set_[static_cast<size_t>(pairs[static_cast<size_t>(i)])] = 1;
        scores[static_cast<size_t>(i)] = intent_score_[static_cast<size_t>(pairs[static_cast<size_t>(i)])];
    }
    store_->prefetch(pairs.data(), scores.data(), static_cast<int>(n));
}

}  // namespace chronos::rt
