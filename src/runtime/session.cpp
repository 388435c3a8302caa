// session.cpp: see session.h. Shapes in comments: T rows in the batch, H hidden, E routed
// experts, k experts per token, P context length.
#include "runtime/session.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/error.h"
#include "runtime/kernels.h"

namespace chronos::rt {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

Session::Session(const Model& model, const SessionOptions& options)
    : model_(model),
      options_(options),
      prefetcher_(model, options),
      attn_(model.config, std::max<int64_t>(model.config.max_position_embeddings, options.max_sequences)),
      groups_(model.config.n_routed_experts, std::max<int64_t>(model.config.max_position_embeddings, options.max_sequences),
              model.config.num_experts_per_tok),
      expert_(model.config, std::max<int64_t>(model.config.max_position_embeddings, options.max_sequences)) {
    kernel_isa();  // reads CHRONOS_KERNELS here, where a bad value can throw, not inside a parallel region
    const ModelConfig& c = model_.config;
    const int64_t H = c.hidden_size, E = c.n_routed_experts, k = c.num_experts_per_tok, L = c.num_hidden_layers;
    const int64_t Lm = c.n_moe_layers(), P = c.max_position_embeddings, V = c.vocab_size;
    // sg_/su_ serve the shared expert and the dense layers' MLP alike.
    const int64_t Fs = std::max(c.shared_intermediate(), Lm < L ? c.intermediate_size : 0);
    if (options_.max_sequences < 1) fail("a session needs at least one sequence, not {}", options_.max_sequences);
    const int64_t S = options_.max_sequences;

    // The store cuts the budget into whole slots and never allocates more than one per pair.
    const uint64_t budget = (options_.mode == MissMode::resident || options_.ram_budget == 0) ? kBudgetAll : options_.ram_budget;
    store_ = std::make_unique<ExpertStore>(model_.manifest, model_.dir, budget, k, options_.io, &prefetcher_.residency());
    if (options_.mode == MissMode::resident) {
        store_->load_all();
    } else if (options_.preload) {
        store_->preload(store_->pairs());
    }
    metrics_.bytes_read_load = store_->counters().bytes_read;
    metrics_.misses_by_layer.assign(static_cast<size_t>(Lm), 0);

    tmax_ = std::max(P, S);
    auto sized = [](std::vector<float>& v, int64_t n) { v.assign(static_cast<size_t>(std::max<int64_t>(n, 1)), 0.0f); };
    sized(h_, tmax_ * H);
    sized(a_, tmax_ * H);
    sized(att_, tmax_ * H);
    sized(probs_, tmax_ * E);
    sized(choice_, router_choice_len(c));
    sized(topw_, tmax_ * k);
    sized(y_, tmax_ * k * H);  // one row per assignment, summed in expert order
    sized(sg_, tmax_ * Fs);
    sized(su_, tmax_ * Fs);
    sized(lo_, S * V);
    topi_.assign(static_cast<size_t>(tmax_ * k), 0);
    order_.assign(static_cast<size_t>(E), 0);
    asked_.assign(static_cast<size_t>(E), PairState::absent);
    rank_.assign(static_cast<size_t>(E), 0);
    demand_.assign(static_cast<size_t>(E), 0);
    avail_.assign(static_cast<size_t>(E), 1.0f);
    row_seq_.assign(static_cast<size_t>(tmax_), 0);
    row_cache_.assign(static_cast<size_t>(S), nullptr);
    row_pos_.assign(static_cast<size_t>(S), 0);
    seqs_.resize(static_cast<size_t>(S));
    for (Sequence& q : seqs_) {
        for (int64_t l = 0; l < L; ++l) q.caches.push_back(layer_cache_init(c, c.attention_pattern[static_cast<size_t>(l)]));
        sized(q.logits, V);
        sized(q.h_la, H);
        sized(q.route_prev, Lm * E);
        sized(q.route_cur, Lm * E);
        sized(q.route_prev2, Lm * E);
    }
}

Session::~Session() = default;

const Session::Sequence& Session::seq_at(int32_t seq) const {
    if (seq < 0 || seq >= sequences()) fail("sequence {} outside the session's {} (SessionOptions::max_sequences)", seq, sequences());
    return seqs_[static_cast<size_t>(seq)];
}

void Session::prefill_sequence(int32_t seq, const int32_t* ids, int64_t T, float* logits_all) {
    const ModelConfig& c = model_.config;
    Sequence& q = seq_at(seq);
    if (T < 1) fail("empty prompt");
    if (T > c.max_position_embeddings) {
        fail("prompt of {} tokens is longer than the model's context of {} tokens", T, c.max_position_embeddings);
    }
    q.pos = 0;
    std::fill(q.route_prev.begin(), q.route_prev.end(), 0.0f);
    for (LayerCache& cache : q.caches) layer_cache_reset(cache);
    const auto t0 = Clock::now();
    const uint64_t bytes0 = store_->counters().bytes_read;
    prefetcher_.begin_prompt(seq, ids, T, step_, *store_);
    row_seq_[0] = seq;
    forward(ids, T, Phase::prefill, logits_all);
    metrics_.prompt_tokens += T;
    metrics_.prefill_s += seconds_since(t0);
    metrics_.bytes_read_prefill += store_->counters().bytes_read - bytes0;
}

void Session::decode_batch(const int32_t* seqs, const int32_t* ids, int64_t B) {
    if (B < 1 || B > sequences()) fail("a decode step of {} sequences in a session of {}", B, sequences());
    for (int64_t b = 0; b < B; ++b) {
        const Sequence& q = seq_at(seqs[b]);
        for (int64_t o = 0; o < b; ++o) if (seqs[o] == seqs[b]) fail("sequence {} twice in one decode step", seqs[b]);
        if (q.pos >= model_.config.max_position_embeddings) {
            fail("the context of {} tokens is full", model_.config.max_position_embeddings);
        }
        row_seq_[static_cast<size_t>(b)] = seqs[b];
    }
    const auto t0 = Clock::now();
    const uint64_t bytes0 = store_->counters().bytes_read, reads0 = store_->counters().reads;
    ++step_;
    forward(ids, B, Phase::decode, nullptr);
    metrics_.decode_tokens += B;
    metrics_.decode_s += seconds_since(t0);
    metrics_.bytes_read_decode += store_->counters().bytes_read - bytes0;
    metrics_.reads_decode += store_->counters().reads - reads0;
}

void Session::release(int32_t seq) {
    seq_at(seq);  // checks the index
    prefetcher_.end_sequence(seq);
}

// Prefill: T rows of the prompt of sequence row_seq_[0] at positions 0..T-1 (one GEMM per
// product). Decode: one row per sequence row_seq_[b], each at its own position, each product
// row by row as a one-row call forms it.
void Session::forward(const int32_t* ids, int64_t T, Phase phase, float* logits_all) {
    const ModelConfig& c = model_.config;
    const int64_t H = c.hidden_size, L = c.num_hidden_layers;
    const bool decoding = phase == Phase::decode;
    Sequence& first = seqs_[static_cast<size_t>(row_seq_[0])];
    CHRONOS_ASSERT(T <= tmax_ && (decoding || first.pos + T <= c.max_position_embeddings), "batch past the context");
    auto row = [&](int64_t b) -> Sequence& { return seqs_[static_cast<size_t>(row_seq_[static_cast<size_t>(b)])]; };
    for (int64_t t = 0; t < T; ++t) {
        if (ids[t] < 0 || ids[t] >= c.vocab_size) fail("token id {} is outside the vocabulary of {}", ids[t], c.vocab_size);
        matrix_row(model_.embed, ids[t], H, &h_[static_cast<size_t>(t * H)]);
    }
    // The head reads block j's output with the full routing of the latest token that has one:
    // t itself when j is the last block, else t-1 (model.h, LookaheadHead).
    const int64_t j_la = c.lookahead_input_layer;
    const bool own_route = lookahead_reads_own_routing(c);
    const bool has_head = model_.lookahead.hidden > 0;
    // The lookahead's prediction for this token becomes "current"; the new one goes to "next".
    if (decoding) {
        for (int64_t b = 0; b < T; ++b) prefetcher_.begin_token(row_seq_[static_cast<size_t>(b)]);
    }
    for (int64_t l = 0; l < L; ++l) {
        const LayerWeights& w = model_.layers[static_cast<size_t>(l)];
        rmsnorm(h_.data(), w.input_norm, a_.data(), T, H, c.rms_norm_eps);
        if (decoding) {
            for (int64_t b = 0; b < T; ++b) {
                Sequence& q = row(b);
                row_cache_[static_cast<size_t>(b)] = &q.caches[static_cast<size_t>(l)];
                row_pos_[static_cast<size_t>(b)] = q.pos;
            }
            attention_forward_rows(att_.data(), a_.data(), w, c, row_cache_.data(), row_pos_.data(), T, attn_);
        } else {
            attention_forward(att_.data(), a_.data(), w, c, first.caches[static_cast<size_t>(l)], first.pos, T, attn_);
        }
        for (int64_t i = 0; i < T * H; ++i) h_[static_cast<size_t>(i)] += att_[static_cast<size_t>(i)];
        rmsnorm(h_.data(), w.post_norm, a_.data(), T, H, c.rms_norm_eps);
        if (w.moe) {
            moe_layer(l, T, phase);
        } else {
            shared_expert_forward(h_.data(), a_.data(), w, T, H, c.intermediate_size, sg_.data(), su_.data(), /*rowwise=*/decoding);
        }
        if (l == j_la) {
            if (decoding) {
                // Decode: name the experts of t+1..t+K now, so they load while layers j+1..L-1
                // of t (and, past the last block, the lm_head and t+1's first layers) compute.
                for (int64_t b = 0; b < T; ++b) {
                    Sequence& q = row(b);
                    std::memcpy(q.h_la.data(), &h_[static_cast<size_t>(b * H)], static_cast<size_t>(H) * sizeof(float));
                    if (has_head) {
                        prefetcher_.lookahead(row_seq_[static_cast<size_t>(b)], q.h_la.data(),
                                              own_route ? q.route_cur.data() : q.route_prev.data(), step_, on_predict);
                    }
                }
                if (has_head) prefetcher_.schedule(*store_);
            } else {
                std::memcpy(first.h_la.data(), &h_[static_cast<size_t>((T - 1) * H)], static_cast<size_t>(H) * sizeof(float));
            }
        }
        // Layers at or past the head's block have a fresh t+1 prediction to refill from.
        if (decoding && l >= j_la && w.moe) prefetcher_.refill_layer(w.moe_index, *store_);
    }
    if (decoding) {
        for (int64_t b = 0; b < T; ++b) row(b).pos += 1;
    } else {
        first.pos += T;
        if (has_head) {
            // The last prompt token names the first generated tokens' experts.
            if (T < 2) std::fill(first.route_prev2.begin(), first.route_prev2.end(), 0.0f);
            prefetcher_.lookahead(row_seq_[0], first.h_la.data(), own_route ? first.route_cur.data() : first.route_prev2.data(), step_,
                                  on_predict);
            prefetcher_.schedule(*store_);
        }
    }
    for (int64_t b = 0; b < (decoding ? T : 1); ++b) row(b).route_prev.swap(row(b).route_cur);

    const int64_t V = c.vocab_size;
    if (logits_all != nullptr) {
        rmsnorm(h_.data(), model_.final_norm, a_.data(), T, H, c.rms_norm_eps);
        matmul_wt(a_.data(), model_.lm_head, logits_all, T, H, V);
        std::memcpy(first.logits.data(), logits_all + (T - 1) * V, static_cast<size_t>(V) * sizeof(float));
    } else if (decoding) {
        rmsnorm(h_.data(), model_.final_norm, a_.data(), T, H, c.rms_norm_eps);
        matmul_wt_rowwise(a_.data(), model_.lm_head, lo_.data(), T, H, V);
        for (int64_t b = 0; b < T; ++b) {
            std::memcpy(row(b).logits.data(), &lo_[static_cast<size_t>(b * V)], static_cast<size_t>(V) * sizeof(float));
        }
    } else {
        rmsnorm(&h_[static_cast<size_t>((T - 1) * H)], model_.final_norm, a_.data(), 1, H, c.rms_norm_eps);
        matmul_wt(a_.data(), model_.lm_head, first.logits.data(), 1, H, V);
    }
}

// a_ [T, H] (post-attention norm) -> h_ += sum_i w_i a_i E_i(a_) + shared(a_): the router,
// then each chosen expert as the prefetcher's miss policy allows, resident ones first, then
// those being read, then the rest, so that compute overlaps the reads. In a decode step an
// expert is fetched once for all the rows (sequences) routed to it.
void Session::moe_layer(int64_t layer, int64_t T, Phase phase) {
    const ModelConfig& c = model_.config;
    const LayerWeights& w = model_.layers[static_cast<size_t>(layer)];
    const int64_t l = w.moe_index;  // pairs, routes and the prefetcher count MoE layers
    const int64_t H = c.hidden_size, E = c.n_routed_experts, k = c.num_experts_per_tok, F = c.moe_intermediate_size;
    const bool decoding = phase == Phase::decode;
    router_forward(probs_.data(), topi_.data(), topw_.data(), a_.data(), w, c, T, choice_.data(), /*rowwise=*/decoding);
    const size_t le = static_cast<size_t>(l * E), e_bytes = static_cast<size_t>(E) * sizeof(float);
    if (decoding) {
        for (int64_t b = 0; b < T; ++b) {
            const int32_t seq = row_seq_[static_cast<size_t>(b)];
            std::memcpy(&seqs_[static_cast<size_t>(seq)].route_cur[le], &probs_[static_cast<size_t>(b * E)], e_bytes);
            prefetcher_.count_recall(seq, l, &topi_[static_cast<size_t>(b * k)], metrics_);
        }
    } else {
        Sequence& q = seqs_[static_cast<size_t>(row_seq_[0])];
        std::memcpy(&q.route_cur[le], &probs_[static_cast<size_t>((T - 1) * E)], e_bytes);
        if (T >= 2) std::memcpy(&q.route_prev2[le], &probs_[static_cast<size_t>((T - 2) * E)], e_bytes);
    }
    moe_group(groups_, topi_.data(), topw_.data(), T, k, E);
    // topi_ holds each row's choices best first: an expert's rank is its best position there
    // (the replacement policy learns how often a pair is chosen again by its rank).
    std::fill(rank_.begin(), rank_.end(), static_cast<int32_t>(k));
    for (int64_t i = 0; i < T * k; ++i) {
        int32_t& r = rank_[static_cast<size_t>(topi_[static_cast<size_t>(i)])];
        r = std::min(r, static_cast<int32_t>(i % k));
    }
    prefetcher_.at_layer(step_, l);
    if (!decoding) prefetcher_.route_prompt(l, topi_.data(), T);
    // The layer asks for its experts now: their states at this moment decide hits and misses.
    if (options_.mode != MissMode::resident) store_->poll();
    const double ask_s = std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
    int64_t n_order = 0;
    for (int64_t e = 0; e < E; ++e) {
        const int32_t pair = static_cast<int32_t>(l * E + e);
        asked_[static_cast<size_t>(e)] = store_->ready(pair) ? PairState::ready : store_->loading(pair) ? PairState::loading : PairState::absent;
    }
    for (PairState pass : {PairState::ready, PairState::loading, PairState::absent}) {
        for (int64_t e = 0; e < E; ++e) {
            if (groups_.count[static_cast<size_t>(e)] > 0 && asked_[static_cast<size_t>(e)] == pass) order_[static_cast<size_t>(n_order++)] = static_cast<int32_t>(e);
        }
    }
    std::fill(avail_.begin(), avail_.end(), 1.0f);
    bool demanded = false;
    for (int64_t i = 0; i < n_order; ++i) {
        const int32_t e = order_[static_cast<size_t>(i)];
        const int32_t pair = static_cast<int32_t>(l * E + e);
        const int32_t n = groups_.count[static_cast<size_t>(e)];
        if (options_.mode == MissMode::exact && !demanded && asked_[static_cast<size_t>(e)] != PairState::ready) {
            // Exact waits for every miss. Once the ready experts have computed, the remaining
            // misses are read together, so that they overlap each other instead of following
            // one by one, as far as free slots and pairs scoring below a prefetch's bar allow:
            // when the tier is smaller than what the step needs, evicting pairs the policy
            // expects soon costs more misses than the overlap saves (then fetch_wait reads
            // them one by one, each evicting the policy's choice).
            demanded = true;
            int n_demand = 0;
            for (int64_t j = i; j < n_order; ++j) {
                const int32_t ej = order_[static_cast<size_t>(j)];
                if (asked_[static_cast<size_t>(ej)] == PairState::absent) demand_[static_cast<size_t>(n_demand++)] = static_cast<int32_t>(l * E + ej);
            }
            if (n_demand > 0) store_->fetch_async(demand_.data(), n_demand, options_.prefetch_threshold);
        }
        const bool available = prefetcher_.acquire(pair, static_cast<uint64_t>(n), rank_[static_cast<size_t>(e)], decoding,
                                                   asked_[static_cast<size_t>(e)], ask_s, *store_, metrics_);
        avail_[static_cast<size_t>(e)] = available ? 1.0f : 0.0f;
        if (!available) continue;
        store_->pin(pair);
        store_->mark_used(pair);
        const int32_t s = groups_.start[static_cast<size_t>(e)];
        expert_forward(&y_[static_cast<size_t>(s) * static_cast<size_t>(H)], a_.data(), &groups_.rows[static_cast<size_t>(s)], n,
                       store_->data(pair), model_.manifest.dtype, H, F, expert_, /*rowwise=*/decoding);
        store_->unpin(pair);
    }
    prefetcher_.read_fallbacks(*store_);
    moe_combine(h_.data(), y_.data(), groups_, avail_.data(), E, H);
    if (w.shared_gate) {
        shared_expert_forward(h_.data(), a_.data(), w, T, H, c.shared_intermediate(), sg_.data(), su_.data(), /*rowwise=*/decoding);
    }
    if (on_route) on_route(l, topi_.data(), T, avail_.data());
}

}  // namespace chronos::rt
