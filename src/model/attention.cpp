// attention.cpp: RMSNorm, RoPE, MLA and (sliding-window) GQA attention.
#include <cmath>

#include "core/error.h"
#include "model/model.h"

namespace chronos {

namespace F = torch::nn::functional;

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
    // At least float32 (narrower inputs are widened); a float64 model stays float64.
    torch::Tensor xf = x.to(at::promote_types(x.scalar_type(), torch::kFloat32));
    torch::Tensor y = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
    return (y * weight).to(x.scalar_type());
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
    weight = register_parameter("weight", torch::ones({dim}));
}

RopeTable rope_table(int64_t dim, double theta, const torch::Tensor& positions, torch::ScalarType dtype) {
    CHRONOS_ASSERT(dim % 2 == 0, "RoPE needs an even width");
    auto opts = torch::TensorOptions().dtype(torch::kFloat64);
    torch::Tensor i = torch::arange(0, dim / 2, opts);
    torch::Tensor inv_freq = torch::pow(theta, -2.0 * i / static_cast<double>(dim));     // [d/2]
    torch::Tensor angles = positions.to(torch::kFloat64).unsqueeze(1) * inv_freq.unsqueeze(0);  // [T, d/2]
    torch::Tensor full = torch::cat({angles, angles}, -1);                                     // [T, d]
    return {full.cos().to(dtype), full.sin().to(dtype)};
}

RopeTable rope_table(const std::vector<double>& inv_freq, double scale, const torch::Tensor& positions, torch::ScalarType dtype) {
    torch::Tensor inv = torch::tensor(inv_freq, torch::TensorOptions().dtype(torch::kFloat64));                 // [d/2]
    torch::Tensor angles = positions.to(torch::kFloat64).unsqueeze(1) * inv.unsqueeze(0);                        // [T, d/2]
    torch::Tensor full = torch::cat({angles, angles}, -1);                                                       // [T, d]
    return {(full.cos() * scale).to(dtype), (full.sin() * scale).to(dtype)};
}

torch::Tensor rope_apply(const torch::Tensor& x, const RopeTable& rope) {
    const int64_t half = x.size(-1) / 2;
    torch::Tensor x1 = x.narrow(-1, 0, half);
    torch::Tensor x2 = x.narrow(-1, half, half);
    torch::Tensor rotated = torch::cat({-x2, x1}, -1);
    return x * rope.cos.to(x.scalar_type()) + rotated * rope.sin.to(x.scalar_type());
}

namespace {

// The rope table's precision for an input: float64 for a float64 model, float32 otherwise.
torch::ScalarType rope_dtype(const torch::Tensor& x) { return x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32; }

// Default positions: continue after what the cache holds, else 0..T-1.
torch::Tensor positions_or_default(const torch::Tensor& positions, int64_t T, const LayerCache* cache) {
    if (positions.defined()) return positions;
    int64_t start = 0;
    if (cache != nullptr && cache->positions.defined() && cache->positions.numel() > 0) {
        start = cache->positions[-1].item<int64_t>() + 1;
    }
    return torch::arange(start, start + T, torch::kInt64);
}

// allowed[i, j] = key j is visible to query i: kpos <= qpos and, with a window, qpos - kpos < window.
torch::Tensor attention_mask(const torch::Tensor& qpos, const torch::Tensor& kpos, int64_t window) {
    torch::Tensor q = qpos.unsqueeze(1), k = kpos.unsqueeze(0);
    torch::Tensor allowed = k <= q;
    if (window > 0) allowed = allowed & ((q - k) < window);
    return allowed;  // [T, S] bool
}

// q [B, nh, T, d], k [B, nh, S, d], v [B, nh, S, dv] -> [B, nh, T, dv]
torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& allowed,
                     double scale) {
    torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1)) * scale;
    scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
    return torch::matmul(torch::softmax(scores, -1), v);
}

}  // namespace

MlaAttentionImpl::MlaAttentionImpl(const ModelConfig& c)
    : nh(c.num_attention_heads), d_nope(c.qk_nope_head_dim), d_rope(c.qk_rope_head_dim), d_v(c.v_head_dim),
      rank(c.kv_lora_rank), inv_freq(rope_inv_freq(c, c.qk_rope_head_dim)), rope_scale(rope_cos_sin_scale(c)),
      softmax_scale(attention_scale_factor(c) / std::sqrt(double(c.qk_nope_head_dim + c.qk_rope_head_dim))) {
    const int64_t H = c.hidden_size;
    auto lin = [](int64_t in, int64_t out) { return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)); };
    if (c.q_lora_rank > 0) {
        q_a_proj = register_module("q_a_proj", lin(H, c.q_lora_rank));
        q_a_layernorm = register_module("q_a_layernorm", RMSNorm(c.q_lora_rank, c.rms_norm_eps));
        q_b_proj = register_module("q_b_proj", lin(c.q_lora_rank, nh * (d_nope + d_rope)));
    } else {
        q_proj = register_module("q_proj", lin(H, nh * (d_nope + d_rope)));
    }
    kv_a_proj_with_mqa = register_module("kv_a_proj_with_mqa", lin(H, rank + d_rope));
    kv_a_layernorm = register_module("kv_a_layernorm", RMSNorm(rank, c.rms_norm_eps));
    kv_b_proj = register_module("kv_b_proj", lin(rank, nh * (d_nope + d_v)));
    o_proj = register_module("o_proj", lin(nh * d_v, H));
}

torch::Tensor MlaAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& positions_in, LayerCache* cache) {
    const int64_t B = x.size(0), T = x.size(1);
    torch::Tensor positions = positions_or_default(positions_in, T, cache);
    RopeTable rope = rope_table(inv_freq, rope_scale, positions, rope_dtype(x));

    // Queries: head by head, each [nope | rope].
    torch::Tensor qx = q_a_proj.is_empty() ? q_proj(x) : q_b_proj(q_a_layernorm(q_a_proj(x)));
    torch::Tensor q = qx.view({B, T, nh, d_nope + d_rope}).transpose(1, 2);  // [B, nh, T, dn+dr]
    torch::Tensor q_nope = q.narrow(-1, 0, d_nope);
    torch::Tensor q_rope = rope_apply(q.narrow(-1, d_nope, d_rope), rope);

    // Latent and the shared rope key: [latent r | rope key].
    torch::Tensor kv_a = kv_a_proj_with_mqa(x);                                 // [B, T, r+dr]
    torch::Tensor c_kv = kv_a_layernorm(kv_a.narrow(-1, 0, rank));              // [B, T, r]
    torch::Tensor k_rope = rope_apply(kv_a.narrow(-1, rank, d_rope), rope);     // [B, T, dr]
    torch::Tensor kpos = positions;
    if (cache != nullptr) {
        if (cache->c_kv.defined()) {
            c_kv = torch::cat({cache->c_kv, c_kv}, 1);
            k_rope = torch::cat({cache->k_rope, k_rope}, 1);
            kpos = torch::cat({cache->positions, positions}, 0);
        }
        cache->c_kv = c_kv;
        cache->k_rope = k_rope;
        cache->positions = kpos;
    }
    const int64_t S = c_kv.size(1);
    // Up-projection of the latent, head by head, each [k_nope | v].
    torch::Tensor kv = kv_b_proj(c_kv).view({B, S, nh, d_nope + d_v}).transpose(1, 2);  // [B, nh, S, dn+dv]
    torch::Tensor k_nope = kv.narrow(-1, 0, d_nope);
    torch::Tensor v = kv.narrow(-1, d_nope, d_v);
    torch::Tensor k = torch::cat({k_nope, k_rope.unsqueeze(1).expand({B, nh, S, d_rope})}, -1);
    torch::Tensor qf = torch::cat({q_nope, q_rope}, -1);
    torch::Tensor out = attend(qf, k, v, attention_mask(positions, kpos, 0), softmax_scale);
    return o_proj(out.transpose(1, 2).reshape({B, T, nh * d_v}));
}

GqaAttentionImpl::GqaAttentionImpl(const ModelConfig& c, int64_t window_)
    : nh(c.num_attention_heads), n_kv(c.num_key_value_heads), head_dim(c.head_dim), window(window_),
      inv_freq(rope_inv_freq(c, c.head_dim)), rope_scale(rope_cos_sin_scale(c)), qk_norm(c.qk_norm), clip_qkv(c.clip_qkv) {
    const int64_t H = c.hidden_size;
    auto lin = [](int64_t in, int64_t out, bool bias) { return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias)); };
    q_proj = register_module("q_proj", lin(H, nh * head_dim, c.attention_bias));
    k_proj = register_module("k_proj", lin(H, n_kv * head_dim, c.attention_bias));
    v_proj = register_module("v_proj", lin(H, n_kv * head_dim, c.attention_bias));
    o_proj = register_module("o_proj", lin(nh * head_dim, H, false));
    if (qk_norm == QkNorm::head) {
        q_norm = register_module("q_norm", RMSNorm(head_dim, c.rms_norm_eps));
        k_norm = register_module("k_norm", RMSNorm(head_dim, c.rms_norm_eps));
    } else if (qk_norm == QkNorm::proj) {
        q_norm = register_module("q_norm", RMSNorm(nh * head_dim, c.rms_norm_eps));
        k_norm = register_module("k_norm", RMSNorm(n_kv * head_dim, c.rms_norm_eps));
    }
}

torch::Tensor GqaAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& positions_in, LayerCache* cache) {
    const int64_t B = x.size(0), T = x.size(1);
    torch::Tensor positions = positions_or_default(positions_in, T, cache);
    RopeTable rope = rope_table(inv_freq, rope_scale, positions, rope_dtype(x));
    torch::Tensor q = q_proj(x), k = k_proj(x), v = v_proj(x);  // [B, T, nh*hd], [B, T, nkv*hd] x2
    if (qk_norm == QkNorm::proj) {
        q = q_norm(q);
        k = k_norm(k);
    }
    q = q.view({B, T, nh, head_dim});
    k = k.view({B, T, n_kv, head_dim});
    if (qk_norm == QkNorm::head) {
        q = q_norm(q);
        k = k_norm(k);
    }
    if (clip_qkv > 0) {
        q = q.clamp(-clip_qkv, clip_qkv);
        k = k.clamp(-clip_qkv, clip_qkv);
        v = v.clamp(-clip_qkv, clip_qkv);
    }
    q = rope_apply(q.transpose(1, 2), rope);  // [B, nh, T, hd]
    k = rope_apply(k.transpose(1, 2), rope);  // [B, nkv, T, hd]
    v = v.view({B, T, n_kv, head_dim}).transpose(1, 2);
    torch::Tensor kpos = positions;
    if (cache != nullptr) {
        if (cache->k.defined()) {
            k = torch::cat({cache->k, k}, 2);
            v = torch::cat({cache->v, v}, 2);
            kpos = torch::cat({cache->positions, positions}, 0);
        }
        // A sliding-window cache keeps the last `window` entries (a ring buffer in the runtime);
        // positions keep counting, so RoPE stays relative.
        torch::Tensor keep_k = k, keep_v = v, keep_pos = kpos;
        if (window > 0 && kpos.size(0) > window) {
            const int64_t drop = kpos.size(0) - window;
            keep_k = k.narrow(2, drop, window);
            keep_v = v.narrow(2, drop, window);
            keep_pos = kpos.narrow(0, drop, window);
        }
        cache->k = keep_k;
        cache->v = keep_v;
        cache->positions = keep_pos;
    }
    const int64_t group = nh / n_kv;
    torch::Tensor kf = k.repeat_interleave(group, 1);  // query head i uses kv head i / group
    torch::Tensor vf = v.repeat_interleave(group, 1);
    torch::Tensor out = attend(q, kf, vf, attention_mask(positions, kpos, window), 1.0 / std::sqrt(double(head_dim)));
    return o_proj(out.transpose(1, 2).reshape({B, T, nh * head_dim}));
}

}  // namespace chronos
