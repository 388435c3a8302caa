// layers.cpp: see layers.h.
#include "runtime/layers.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "runtime/kernels.h"

namespace chronos::rt {

namespace {

void sized(std::vector<float>& v, int64_t n) { v.assign(static_cast<size_t>(std::max<int64_t>(n, 1)), 0.0f); }

// x [n] += b [n]
void add_bias(float* x, const float* b, int64_t n) {
    for (int64_t i = 0; i < n; ++i) x[i] += b[i];
}

// x [n] clamped to [-clip, clip]
void clamp_values(float* x, int64_t n, float clip) {
    for (int64_t i = 0; i < n; ++i) x[i] = std::min(std::max(x[i], -clip), clip);
}

// y [T, out] = x [T, in] W^T: one GEMM (prefill), or each row as a one-row call forms it
// (batched decode, kernels.h).
void product(const float* x, const Matrix& W, float* y, int64_t T, int64_t in, int64_t out, bool rowwise) {
    if (rowwise) {
        matmul_wt_rowwise(x, W, y, T, in, out);
    } else {
        matmul_wt(x, W, y, T, in, out);
    }
}

}  // namespace

LayerCache layer_cache_init(const ModelConfig& c, AttentionKind kind) {
    const int64_t P = c.max_position_embeddings;
    LayerCache cache;
    if (kind == AttentionKind::mla) {
        cache.a.assign(static_cast<size_t>(P * c.kv_lora_rank), 0.0f);
        cache.b.assign(static_cast<size_t>(P * c.qk_rope_head_dim), 0.0f);
    } else {
        const int64_t rows = kind == AttentionKind::swa ? std::min(c.sliding_window, P) : P;
        const int64_t width = c.num_key_value_heads * c.head_dim;
        cache.a.assign(static_cast<size_t>(rows * width), 0.0f);
        cache.b.assign(static_cast<size_t>(rows * width), 0.0f);
        cache.ring_pos.assign(static_cast<size_t>(rows), -1);
    }
    return cache;
}

void layer_cache_reset(LayerCache& cache) { std::fill(cache.ring_pos.begin(), cache.ring_pos.end(), -1); }

AttentionScratch::AttentionScratch(const ModelConfig& c, int64_t tmax) {
    const int64_t nh = c.num_attention_heads, nkv = c.num_key_value_heads, hd = c.head_dim;
    const int64_t r = c.kv_lora_rank, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim;
    sized(q, tmax * nh * std::max(dn + dr, hd));
    sized(qa, tmax * c.q_lora_rank);
    sized(kv, tmax * (r + dr));
    sized(k, tmax * nkv * hd);
    sized(v, tmax * nkv * hd);
    sized(heads, tmax * nh * std::max(dv, hd));
    // A head's MLA latent query and output (r each) and its scores over the context (P).
    per_thread_len = 2 * r + c.max_position_embeddings + 16;
    sized(per_thread, per_thread_len * omp_get_max_threads());
    row_cache.assign(static_cast<size_t>(std::max<int64_t>(tmax, 1)), nullptr);
    row_pos.assign(static_cast<size_t>(std::max<int64_t>(tmax, 1)), 0);
}

namespace {

// MLA with absorbed projections: the cache holds the normalised latent c [P, r] and the rotated
// rope key [P, dr]. Per head, q_lat = W_uk^T q_nope scores against c directly, and the value is
// W_uv (sum_s p_s c_s): the latent is never expanded to keys and values.
void attention_mla(float* out, const float* x, const LayerWeights& w, const ModelConfig& c, LayerCache* const* caches,
                   const int64_t* pos, int64_t T, bool rowwise, AttentionScratch& s) {
    const int64_t H = c.hidden_size, nh = c.num_attention_heads;
    const int64_t r = c.kv_lora_rank, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim;
    const int64_t qw = dn + dr;
    float* q = s.q.data();
    float* kv = s.kv.data();
    if (w.q_a_norm != nullptr) {
        const int64_t qr = c.q_lora_rank;
        float* qa = s.qa.data();
        product(x, w.q_a, qa, T, H, qr, rowwise);  // [T, qr]
        rmsnorm(qa, w.q_a_norm, qa, T, qr, c.rms_norm_eps);
        product(qa, w.q_b, q, T, qr, nh * qw, rowwise);  // [T, nh*(dn+dr)]
    } else {
        product(x, w.q_proj, q, T, H, nh * qw, rowwise);  // [T, nh*(dn+dr)]
    }
    product(x, w.kv_a, kv, T, H, r + dr, rowwise);    // [T, r+dr]
    for (int64_t t = 0; t < T; ++t) {
        const int64_t p = pos[t];
        float* ckv = caches[t]->a.data();
        float* krope = caches[t]->b.data();
        rmsnorm(kv + t * (r + dr), w.kv_a_norm, ckv + p * r, 1, r, c.rms_norm_eps);
        std::memcpy(krope + p * dr, kv + t * (r + dr) + r, static_cast<size_t>(dr) * sizeof(float));
        rope_rotate(krope + p * dr, dr, p, w.rope_inv, w.rope_scale);
        for (int64_t h = 0; h < nh; ++h) rope_rotate(q + t * nh * qw + h * qw + dn, dr, p, w.rope_inv, w.rope_scale);
    }
    const float scale = static_cast<float>(w.softmax_scale);
    float* scratch = s.per_thread.data();
    const int64_t per_thread = s.per_thread_len;
    float* heads = s.heads.data();
#pragma omp parallel for schedule(dynamic)
    for (int64_t idx = 0; idx < T * nh; ++idx) {
        const int64_t t = idx / nh, h = idx % nh, S = pos[t] + 1;
        const float* ckv = caches[t]->a.data();
        const float* krope = caches[t]->b.data();
        float* qlat = scratch + omp_get_thread_num() * per_thread;
        float* olat = qlat + r;
        float* sc = olat + r;
        const float* qn = q + t * nh * qw + h * qw;
        const float* qr = qn + dn;
        const float* w_uk = w.kv_b + h * (dn + dv) * r;  // [dn, r]
        const float* w_uv = w_uk + dn * r;               // [dv, r]
        std::fill(qlat, qlat + r, 0.0f);
        for (int64_t i = 0; i < dn; ++i) {
            const float qi = qn[i];
            const float* row = w_uk + i * r;
            for (int64_t j = 0; j < r; ++j) qlat[j] += qi * row[j];
        }
        gemv(ckv, qlat, sc, S, r);                        // latent part of the scores
        gemv(krope, qr, sc, S, dr, /*accumulate=*/true);  // + rope part
        for (int64_t j = 0; j < S; ++j) sc[j] *= scale;
        softmax(sc, S);
        std::fill(olat, olat + r, 0.0f);
        for (int64_t j = 0; j < S; ++j) {
            const float ps = sc[j];
            const float* cs = ckv + j * r;
            for (int64_t i = 0; i < r; ++i) olat[i] += ps * cs[i];
        }
        gemv(w_uv, olat, heads + t * nh * dv + h * dv, dv, r);
    }
    product(heads, w.o_proj, out, T, nh * dv, H, rowwise);
}

// GQA, full causal or sliding window. The window cache is a ring of `window` rows; positions
// keep counting, so RoPE stays relative after the ring wraps. Each row writes its key and value
// and then attends, so a long prompt never sees a row that a later one overwrote.
void attention_gqa(float* out, const float* x, const LayerWeights& w, const ModelConfig& c, LayerCache* const* caches,
                   const int64_t* pos, int64_t T, bool rowwise, AttentionScratch& s) {
    const int64_t H = c.hidden_size, nh = c.num_attention_heads;
    const int64_t nkv = c.num_key_value_heads, hd = c.head_dim, group = nh / nkv;
    const int64_t window = w.kind == AttentionKind::swa ? c.sliding_window : 0;
    float* q = s.q.data();
    float* k = s.k.data();
    float* v = s.v.data();
    float* heads = s.heads.data();
    product(x, w.wq, q, T, H, nh * hd, rowwise);
    product(x, w.wk, k, T, H, nkv * hd, rowwise);
    product(x, w.wv, v, T, H, nkv * hd, rowwise);
    // The imported families' options, in their order: bias, norm, clip (RoPE follows).
    if (w.bq != nullptr) {
        for (int64_t t = 0; t < T; ++t) {
            add_bias(q + t * nh * hd, w.bq, nh * hd);
            add_bias(k + t * nkv * hd, w.bk, nkv * hd);
            add_bias(v + t * nkv * hd, w.bv, nkv * hd);
        }
    }
    if (c.qk_norm == QkNorm::head) {
        rmsnorm(q, w.q_norm, q, T * nh, hd, c.rms_norm_eps);
        rmsnorm(k, w.k_norm, k, T * nkv, hd, c.rms_norm_eps);
    } else if (c.qk_norm == QkNorm::proj) {
        rmsnorm(q, w.q_norm, q, T, nh * hd, c.rms_norm_eps);
        rmsnorm(k, w.k_norm, k, T, nkv * hd, c.rms_norm_eps);
    }
    if (c.clip_qkv > 0) {
        const float clip = static_cast<float>(c.clip_qkv);
        clamp_values(q, T * nh * hd, clip);
        clamp_values(k, T * nkv * hd, clip);
        clamp_values(v, T * nkv * hd, clip);
    }
    const float scale = static_cast<float>(w.softmax_scale);
    float* scratch = s.per_thread.data();
    const int64_t per_thread = s.per_thread_len;
    for (int64_t t = 0; t < T; ++t) {
        LayerCache& cache = *caches[t];
        float* kc = cache.a.data();
        float* vc = cache.b.data();
        const int64_t rows = static_cast<int64_t>(cache.ring_pos.size());
        const int64_t p = pos[t];
        for (int64_t h = 0; h < nh; ++h) rope_rotate(q + (t * nh + h) * hd, hd, p, w.rope_inv, w.rope_scale);
        for (int64_t g = 0; g < nkv; ++g) rope_rotate(k + (t * nkv + g) * hd, hd, p, w.rope_inv, w.rope_scale);
        const int64_t row = window > 0 ? p % rows : p;
        std::memcpy(kc + row * nkv * hd, k + t * nkv * hd, static_cast<size_t>(nkv * hd) * sizeof(float));
        std::memcpy(vc + row * nkv * hd, v + t * nkv * hd, static_cast<size_t>(nkv * hd) * sizeof(float));
        cache.ring_pos[static_cast<size_t>(row)] = p;
        const int64_t S = window > 0 ? std::min(p + 1, rows) : p + 1;  // rows holding p-window < pos <= p
#pragma omp parallel for schedule(static)
        for (int64_t h = 0; h < nh; ++h) {
            float* sc = scratch + omp_get_thread_num() * per_thread;
            const float* qh = q + (t * nh + h) * hd;
            const int64_t g = h / group;
            for (int64_t j = 0; j < S; ++j) sc[j] = dot(qh, kc + (j * nkv + g) * hd, hd) * scale;
            softmax(sc, S);
            float* o = heads + (t * nh + h) * hd;
            std::fill(o, o + hd, 0.0f);
            for (int64_t j = 0; j < S; ++j) {
                const float ps = sc[j];
                const float* vs = vc + (j * nkv + g) * hd;
                for (int64_t i = 0; i < hd; ++i) o[i] += ps * vs[i];
            }
        }
    }
    product(heads, w.o_proj, out, T, nh * hd, H, rowwise);
}

}  // namespace

void attention_forward(float* out, const float* x, const LayerWeights& w, const ModelConfig& c, LayerCache& cache,
                       int64_t pos, int64_t T, AttentionScratch& s) {
    CHRONOS_ASSERT(T <= static_cast<int64_t>(s.row_pos.size()), "attention batch longer than its scratch");
    for (int64_t t = 0; t < T; ++t) {
        s.row_cache[static_cast<size_t>(t)] = &cache;
        s.row_pos[static_cast<size_t>(t)] = pos + t;
    }
    if (w.kind == AttentionKind::mla) {
        attention_mla(out, x, w, c, s.row_cache.data(), s.row_pos.data(), T, /*rowwise=*/false, s);
    } else {
        attention_gqa(out, x, w, c, s.row_cache.data(), s.row_pos.data(), T, /*rowwise=*/false, s);
    }
}

void attention_forward_rows(float* out, const float* x, const LayerWeights& w, const ModelConfig& c, LayerCache* const* caches,
                            const int64_t* pos, int64_t B, AttentionScratch& s) {
    if (w.kind == AttentionKind::mla) {
        attention_mla(out, x, w, c, caches, pos, B, /*rowwise=*/true, s);
    } else {
        attention_gqa(out, x, w, c, caches, pos, B, /*rowwise=*/true, s);
    }
}

int64_t router_choice_len(const ModelConfig& c) { return c.n_routed_experts + 2 * c.n_group; }

void router_forward(float* probs, int32_t* topi, float* topw, const float* x, const LayerWeights& w,
                    const ModelConfig& c, int64_t T, float* choice, bool rowwise) {
    const int64_t H = c.hidden_size, E = c.n_routed_experts, k = c.num_experts_per_tok;
    const int64_t G = c.n_group, per_group = E / G;
    if (rowwise) {
        matmul_wt_rowwise(x, w.gate, probs, T, H, E);
    } else {
        matmul_wt(x, w.gate, probs, T, H, E);
    }
    for (int64_t t = 0; t < T; ++t) {
        float* p = probs + t * E;
        if (c.scoring_func == ScoringFunc::softmax) {
            softmax(p, E);
        } else {
            for (int64_t e = 0; e < E; ++e) p[e] = 1.0f / (1.0f + std::exp(-p[e]));
        }
        int32_t* top = topi + t * k;
        if (c.topk_method == TopkMethod::greedy) {
            topk(p, E, k, top);
        } else {
            // choice [E] then group scores [G] after it: the score experts are chosen by, and
            // the topk_group groups they may come from (model_config.h).
            float* gs = choice + E;
            for (int64_t e = 0; e < E; ++e) choice[e] = w.gate_bias != nullptr ? p[e] + w.gate_bias[e] : p[e];
            for (int64_t g = 0; g < G; ++g) {
                const float* cg = choice + g * per_group;
                if (c.topk_method == TopkMethod::group_limited) {
                    float m = cg[0];
                    for (int64_t i = 1; i < per_group; ++i) m = std::max(m, cg[i]);
                    gs[g] = m;
                } else {  // noaux_tc: the sum of the group's two best
                    float a = cg[0], b = cg[1];
                    if (b > a) std::swap(a, b);
                    for (int64_t i = 2; i < per_group; ++i) {
                        if (cg[i] > a) {
                            b = a;
                            a = cg[i];
                        } else if (cg[i] > b) {
                            b = cg[i];
                        }
                    }
                    gs[g] = a + b;
                }
            }
            int32_t* keep = reinterpret_cast<int32_t*>(gs + G);  // [topk_group]
            topk(gs, G, c.topk_group, keep);
            for (int64_t g = 0; g < G; ++g) {
                bool kept = false;
                for (int64_t i = 0; i < c.topk_group; ++i) kept |= keep[i] == g;
                if (!kept) std::fill(choice + g * per_group, choice + (g + 1) * per_group, 0.0f);  // as DeepSeek: 0, not -inf
            }
            topk(choice, E, k, top);
        }
        float sum = 0;
        for (int64_t j = 0; j < k; ++j) sum += p[top[j]];
        const float scaling = static_cast<float>(c.routed_scaling_factor);
        for (int64_t j = 0; j < k; ++j) {
            const float wj = c.norm_topk_prob ? p[top[j]] / sum : p[top[j]];
            topw[t * k + j] = scaling == 1.0f ? wj : wj * scaling;
        }
    }
}

MoeGroups::MoeGroups(int64_t E, int64_t tmax, int64_t k)
    : count(static_cast<size_t>(E), 0),
      start(static_cast<size_t>(E + 1), 0),
      rows(static_cast<size_t>(tmax * k), 0),
      fill(static_cast<size_t>(E), 0),
      rows_w(static_cast<size_t>(tmax * k), 0.0f) {}

void moe_group(MoeGroups& g, const int32_t* topi, const float* topw, int64_t T, int64_t k, int64_t E) {
    std::fill(g.count.begin(), g.count.end(), 0);
    for (int64_t i = 0; i < T * k; ++i) g.count[static_cast<size_t>(topi[i])]++;
    g.start[0] = 0;
    for (int64_t e = 0; e < E; ++e) g.start[static_cast<size_t>(e + 1)] = g.start[static_cast<size_t>(e)] + g.count[static_cast<size_t>(e)];
    std::fill(g.fill.begin(), g.fill.end(), 0);
    for (int64_t i = 0; i < T * k; ++i) {
        const int32_t e = topi[i];
        const int32_t at = g.start[static_cast<size_t>(e)] + g.fill[static_cast<size_t>(e)]++;
        g.rows[static_cast<size_t>(at)] = static_cast<int32_t>(i / k);
        g.rows_w[static_cast<size_t>(at)] = topw[i];
    }
}

ExpertScratch::ExpertScratch(const ModelConfig& c, int64_t tmax) {
    const int64_t H = c.hidden_size, F = c.moe_intermediate_size;
    sized(xs, tmax * H);
    sized(g, tmax * F);
    sized(u, tmax * F);
}

void expert_forward(float* out, const float* x, const int32_t* rows, int64_t n, const uint8_t* weights, WeightType type,
                    int64_t H, int64_t F, ExpertScratch& s, bool rowwise) {
    const uint64_t mat = weight_matrix_bytes(type, F, H);  // gate [F, H] | up [F, H] | down [H, F]
    const Matrix wg(weights, type), wu(weights + mat, type), wd(weights + 2 * mat, type);
    for (int64_t i = 0; i < n; ++i) std::memcpy(s.xs.data() + i * H, x + rows[i] * H, static_cast<size_t>(H) * sizeof(float));
    if (rowwise) {
        matmul2_wt_rowwise(s.xs.data(), wg, s.g.data(), wu, s.u.data(), n, H, F);
    } else {
        matmul2_wt(s.xs.data(), wg, s.g.data(), wu, s.u.data(), n, H, F);
    }
    silu_mul(s.g.data(), s.u.data(), n * F);
    if (rowwise) {
        matmul_wt_rowwise(s.g.data(), wd, out, n, F, H);
    } else {
        matmul_wt(s.g.data(), wd, out, n, F, H);
    }
}

void moe_combine(float* out, const float* y, const MoeGroups& g, const float* avail, int64_t E, int64_t H) {
    for (int64_t e = 0; e < E; ++e) {
        if (avail[e] == 0.0f) continue;  // its weight times availability 0: the term is gone
        for (int32_t i = g.start[static_cast<size_t>(e)]; i < g.start[static_cast<size_t>(e + 1)]; ++i) {
            float* dst = out + static_cast<int64_t>(g.rows[static_cast<size_t>(i)]) * H;
            const float* src = y + static_cast<int64_t>(i) * H;
            const float wi = g.rows_w[static_cast<size_t>(i)];
            for (int64_t j = 0; j < H; ++j) dst[j] += wi * src[j];
        }
    }
}

void shared_expert_forward(float* out, const float* x, const LayerWeights& w, int64_t T, int64_t H, int64_t Fs,
                           float* sg, float* su, bool rowwise) {
    if (rowwise) {
        matmul2_wt_rowwise(x, w.shared_gate, sg, w.shared_up, su, T, H, Fs);
    } else {
        matmul2_wt(x, w.shared_gate, sg, w.shared_up, su, T, H, Fs);
    }
    silu_mul(sg, su, T * Fs);
    if (w.shared_expert_gate != nullptr) {
        // sigmoid(g . x) scales the expert's output; scaling its inner activation is the same
        // product (down is linear), and keeps the accumulate into out.
        for (int64_t t = 0; t < T; ++t) {
            const float z = dot(w.shared_expert_gate, x + t * H, H);
            const float gate = 1.0f / (1.0f + std::exp(-z));
            for (int64_t i = 0; i < Fs; ++i) sg[t * Fs + i] *= gate;
        }
    }
    if (rowwise) {
        matmul_wt_rowwise(sg, w.shared_down, out, T, Fs, H, /*accumulate=*/true);
    } else {
        matmul_wt(sg, w.shared_down, out, T, Fs, H, /*accumulate=*/true);
    }
}

void lookahead_forward(float* out, const float* h, const float* route, const LookaheadWeights& w, const ModelConfig& c,
                       float* in, float* hid) {
    const int64_t H = c.hidden_size, L = c.n_moe_layers(), E = c.n_routed_experts;
    const int64_t K = c.lookahead_steps, D = w.hidden;
    rmsnorm(h, w.norm, in, 1, H, c.rms_norm_eps);
    std::memcpy(in + H, route, static_cast<size_t>(L * E) * sizeof(float));
    matmul_wt(in, w.up, hid, 1, H + L * E, D);
    for (int64_t i = 0; i < D; ++i) hid[i] = hid[i] / (1.0f + std::exp(-hid[i]));
    matmul_wt(hid, w.out, out, 1, D, K * L * E);  // [K, L, E]
    for (int64_t i = 0; i < K * L; ++i) softmax(out + i * E, E);
}

void intent_forward(float* score, const int32_t* ids, int64_t T, const Model& model) {
    const ModelConfig& c = model.config;
    const IntentWeights& iw = model.intent;
    const int64_t H = c.hidden_size, L = c.n_moe_layers(), E = c.n_routed_experts, D = iw.hidden;
    std::vector<float> f(static_cast<size_t>(2 * H), 0.0f), hid(static_cast<size_t>(D)), row(static_cast<size_t>(H));  // once per prompt
    const int64_t tail = std::min(iw.tail_tokens, T);
    for (int64_t t = 0; t < T; ++t) {
        matrix_row(model.embed, ids[t], H, row.data());
        for (int64_t j = 0; j < H; ++j) {
            f[static_cast<size_t>(j)] += row[static_cast<size_t>(j)] / static_cast<float>(T);
            if (t >= T - tail) f[static_cast<size_t>(H + j)] += row[static_cast<size_t>(j)] / static_cast<float>(tail);
        }
    }
    for (int64_t i = 0; i < D; ++i) {
        const float z = iw.up_b[static_cast<size_t>(i)] + dot(&iw.up_w[static_cast<size_t>(i * 2 * H)], f.data(), 2 * H);
        hid[static_cast<size_t>(i)] = z / (1.0f + std::exp(-z));
    }
    for (int64_t p = 0; p < L * E; ++p) {
        const float z = iw.out_b[static_cast<size_t>(p)] + dot(&iw.out_w[static_cast<size_t>(p * D)], hid.data(), D);
        score[p] = 1.0f / (1.0f + std::exp(-z));
    }
}

}  // namespace chronos::rt
