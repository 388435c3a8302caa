// numerics.h: the error bounds of the numerics tests, each derived from an argument rather than
// from a value one run happened to give, so that they hold on any x86-64 CPU, with any OpenBLAS
// kernel family, any SIMD width of the runtime's kernels and any thread count.
//
// The one fact they rest on (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed.,
// §3.1 and §4.2): a sum of n terms, or an inner product of length n, evaluated in floating
// point in ANY order satisfies |fl(s) - s| <= gamma_n * sum |terms|, gamma_n = n u / (1 - n u),
// with u the unit roundoff (2^-24 for float32, 2^-53 for float64). Kernels differ only in the
// order (and the blocking) of their sums, so a bound built from gamma_n covers all of them.
//
//     const double tol = chronos::test::network_bound(kU32, model_config, 52, logit_scale);
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "format/model_config.h"

namespace chronos::test {

constexpr double kU32 = 0x1p-24;  // float32 unit roundoff, 5.96e-8
constexpr double kU64 = 0x1p-53;  // float64 unit roundoff, 1.11e-16

inline double gamma_n(int64_t n, double u) { return static_cast<double>(n) * u / (1.0 - static_cast<double>(n) * u); }

// Rounding stages one pre-norm block of the model passes its input through in sequence: the
// norm, the attention projections, RoPE, scores, softmax, the weighted sum of values, the output
// projection, the residual add; the second norm, the router's product and softmax, an expert's
// gate/up product, SwiGLU, its down product, the weighted sum of experts, the residual add.
constexpr int64_t kStagesPerBlock = 16;

// The longest sum any stage of the model forms over `positions` tokens of context: hidden
// width, expert width, MLA latent, head widths, the attention's sum over positions.
inline int64_t longest_sum(const ModelConfig& c, int64_t positions) {
    const int64_t inner = std::max({c.hidden_size, c.moe_intermediate_size, c.shared_intermediate(), c.intermediate_size, c.kv_lora_rank,
                                    c.q_lora_rank, c.num_attention_heads * std::max(c.v_head_dim, c.head_dim), positions});
    return inner;
}

// Stages the imported families' options add to a block: the q/k/v bias add, the q/k norm, the
// shared expert's gate (its product and the sigmoid's scaling), MLA's query latent (a product and
// a norm) and the routed weights' scaling. Clipping rounds nothing.
inline int64_t extra_stages_per_block(const ModelConfig& c) {
    return (c.attention_bias ? 1 : 0) + (c.qk_norm != QkNorm::none ? 1 : 0) + (c.shared_expert_gate ? 2 : 0) +
           (c.q_lora_rank > 0 ? 2 : 0) + (c.routed_scaling_factor != 1.0 ? 1 : 0);
}

// |float evaluation - exact| for an output of the whole model (a logit, or a lookahead
// probability) whose last product combines magnitudes of at most `scale` (for a logit:
// |final norm output| x |lm_head row|, bounded by Cauchy-Schwarz; 1 for a probability).
// Every stage commits at most gamma_n relative to the magnitudes it combines; RMSNorm and
// softmax renormalise what they are given, so a stage passes its input's relative error on
// without amplifying it beyond first order, and the errors of the L x kStagesPerBlock + 2
// stages add up. The result is the worst case of every order of every sum (any kernel, any
// thread split): measured differences sit one to three orders of magnitude below it, and the
// faults the parity tests exist for (a wrong rotation, mask, window, routing or cache row) move
// logits by 1e-2 and more.
inline double network_bound(double u, const ModelConfig& c, int64_t positions, double scale) {
    const int64_t stages = c.num_hidden_layers * (kStagesPerBlock + extra_stages_per_block(c)) + 2;
    return static_cast<double>(stages) * gamma_n(longest_sum(c, positions), u) * scale;
}

}  // namespace chronos::test
