// test_weight_kernels.cpp: the stored weight types (format/weight_type.h) and the products on
// them (runtime/kernels_narrow.cpp), against a double-precision reference of the dequantized
// weights, on every kernel build this CPU runs, with odd shapes and 1, 2 and 3 threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "format/dtype.h"
#include "format/weight_type.h"
#include "numerics.h"
#include "runtime/kernels.h"

using namespace chronos;

namespace {

const WeightType kNarrow[] = {WeightType::bf16, WeightType::f16, WeightType::q8, WeightType::q4};

std::vector<uint8_t> quantize(WeightType t, const std::vector<float>& w, int64_t rows, int64_t cols) {
    std::vector<uint8_t> q(weight_matrix_bytes(t, rows, cols));
    for (int64_t r = 0; r < rows; ++r) weight_quantize_row(t, w.data() + r * cols, cols, q.data() + r * weight_row_bytes(t, cols));
    return q;
}

std::vector<float> dequantize(WeightType t, const std::vector<uint8_t>& q, int64_t rows, int64_t cols) {
    std::vector<float> w(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r) weight_dequantize_row(t, q.data() + r * weight_row_bytes(t, cols), cols, w.data() + r * cols);
    return w;
}

}  // namespace

TEST(WeightType, NamesSizesAndTheDocumentedLayout) {
    for (WeightType t : {WeightType::f32, WeightType::bf16, WeightType::f16, WeightType::q8, WeightType::q4}) {
        EXPECT_EQ(weight_type_parse(weight_type_name(t)), t);
    }
    EXPECT_FALSE(weight_type_parse("int4").has_value());
    EXPECT_EQ(weight_row_bytes(WeightType::q8, 64), 68u);
    EXPECT_EQ(weight_row_bytes(WeightType::q8, 65), 102u);  // a third, zero-padded block
    EXPECT_EQ(weight_row_bytes(WeightType::q4, 33), 40u);
    EXPECT_EQ(weight_row_bytes(WeightType::bf16, 3), 6u);
    EXPECT_DOUBLE_EQ(weight_bits_per_weight(WeightType::q4), 5.0);

    // q8: values with max |x| = 127 have scale exactly 1, so q = x; bytes = f16 1.0 then the q.
    float x8[32];
    for (int i = 0; i < 32; ++i) x8[i] = static_cast<float>(127 - 8 * i);
    uint8_t b8[34];
    weight_quantize_row(WeightType::q8, x8, 32, b8);
    EXPECT_EQ(b8[0], 0x00);
    EXPECT_EQ(b8[1], 0x3c);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(static_cast<int8_t>(b8[2 + i]), 127 - 8 * i) << i;
    // q4: values 0..15 twice have minimum 0 and scale 1, so q = x; byte j = q[j] | q[j+16] << 4.
    float x4[32];
    for (int i = 0; i < 32; ++i) x4[i] = static_cast<float>(i % 16);
    uint8_t b4[20];
    weight_quantize_row(WeightType::q4, x4, 32, b4);
    EXPECT_EQ(b4[0] | b4[1] << 8, 0x3c00);  // d = 1
    EXPECT_EQ(b4[2] | b4[3] << 8, 0x0000);  // m = 0
    for (int j = 0; j < 16; ++j) EXPECT_EQ(b4[4 + j], j | j << 4) << j;
    float back[32];
    weight_dequantize_row(WeightType::q4, b4, 32, back);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(back[i], x4[i]);
}

// Quantization error per weight, from the formats' definitions: q8 rounds x / d to the nearest
// integer (|err| <= d / 2, d = max|x| / 127 up to f16 rounding, 2^-11 relative); q4 rounds
// (x - m) / d with d = (max - min) / 15 (|err| <= d / 2, plus m's f16 rounding, 2^-11 |min|);
// bf16 and f16 round to nearest (2^-9 and 2^-11 relative, f16 flushing below 2^-24 absolute).
TEST(WeightType, RoundTripErrorWithinTheFormatsBound) {
    std::mt19937 gen(11);
    std::normal_distribution<float> n(0.0f, 0.05f);
    const int64_t cols = 1000;  // 31 full blocks and a partial one
    std::vector<float> w(static_cast<size_t>(cols));
    for (float& v : w) v = n(gen);
    w[7] = 0.9f;  // an outlier in the first block
    for (WeightType t : kNarrow) {
        std::vector<uint8_t> q(weight_row_bytes(t, cols));
        weight_quantize_row(t, w.data(), cols, q.data());
        std::vector<float> back(static_cast<size_t>(cols));
        weight_dequantize_row(t, q.data(), cols, back.data());
        for (int64_t b = 0; b < (cols + 31) / 32; ++b) {
            float lo = INFINITY, hi = -INFINITY, amax = 0;
            for (int64_t i = b * 32; i < std::min<int64_t>(cols, b * 32 + 32); ++i) {
                lo = std::min(lo, w[static_cast<size_t>(i)]);
                hi = std::max(hi, w[static_cast<size_t>(i)]);
                amax = std::max(amax, std::fabs(w[static_cast<size_t>(i)]));
            }
            for (int64_t i = b * 32; i < std::min<int64_t>(cols, b * 32 + 32); ++i) {
                const double x = w[static_cast<size_t>(i)], e = std::abs(static_cast<double>(back[static_cast<size_t>(i)]) - x);
                double bound = 0;
                switch (t) {
                    case WeightType::bf16: bound = std::ldexp(std::abs(x), -8); break;
                    case WeightType::f16: bound = std::ldexp(std::abs(x), -10) + 0x1p-24; break;
                    case WeightType::q8: bound = (0.5 + 0x1p-10) * amax / 127.0 + amax * 0x1p-10; break;
                    case WeightType::q4: bound = (0.5 + 0x1p-10) * (hi - lo) / 15.0 + (std::abs(lo) + std::abs(hi)) * 0x1p-10; break;
                    case WeightType::f32: break;
                }
                ASSERT_LE(e, bound) << weight_type_name(t) << " weight " << i << " = " << x;
            }
        }
    }
}

// The products on each narrow type against sum_j W~_rj x_j in double, W~ the dequantized weights.
// bf16/f16: the f32 product's bound, gamma_(in+1) sum |W~ x| (+ the reference's gamma_in).
// q8/q4 quantize x per block b to d_b q (|x - d_b q| <= d_b (1/2 + 128 u): the rounding of
// x / d_b): that error is at most sum_b (1/2 + 128 u) d_b sum_(j in b) |W~_j|; the float block
// terms (d_w d_x) s (+ (m d_x) sum q) and their sum over nb blocks add gamma_(nb+6) of
// sum |W~_j| (|x_j| + d_b); q4's weights d q + m exist in float only rounded (u |W~ x| more).
TEST(RuntimeKernels, NarrowProductsMatchADoubleReferenceOnEveryIsaAndThreadCount) {
    std::mt19937 gen(6);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    const int threads_before = omp_get_max_threads();
    const rt::KernelIsa isa_before = rt::kernel_isa();
    for (WeightType t : kNarrow) {
        for (auto [out, in] : {std::pair<int64_t, int64_t>{1, 1}, {3, 31}, {5, 33}, {9, 95}, {33, 100}, {11, 230}, {130, 517}, {768, 512},
                                  {300, 1664}}) {
            SCOPED_TRACE(std::string(weight_type_name(t)) + " " + std::to_string(out) + "x" + std::to_string(in));
            std::vector<float> W(static_cast<size_t>(out * in)), W2(W.size()), x(static_cast<size_t>(in)), y0(static_cast<size_t>(out));
            for (float& v : W) v = u(gen);
            for (float& v : W2) v = u(gen);
            for (float& v : x) v = u(gen);
            for (float& v : y0) v = u(gen);
            const std::vector<uint8_t> q = quantize(t, W, out, in), q2 = quantize(t, W2, out, in);
            const std::vector<float> Wd = dequantize(t, q, out, in);
            const rt::Matrix M(q.data(), t), M2(q2.data(), t);
            const int64_t nb = (in + 31) / 32;
            std::vector<double> dx(static_cast<size_t>(nb));
            for (int64_t b = 0; b < nb; ++b) {
                float amax = 0;
                for (int64_t j = b * 32; j < std::min(in, b * 32 + 32); ++j) amax = std::max(amax, std::fabs(x[static_cast<size_t>(j)]));
                dx[static_cast<size_t>(b)] = amax / 127.0f;
            }
            std::vector<double> ref(static_cast<size_t>(out)), tol(ref.size());
            for (int64_t r = 0; r < out; ++r) {
                double s = 0, m = 0, act = 0, blk = 0;
                for (int64_t j = 0; j < in; ++j) {
                    const double w = Wd[static_cast<size_t>(r * in + j)], xj = x[static_cast<size_t>(j)], d = dx[static_cast<size_t>(j / 32)];
                    s += w * xj, m += std::abs(w * xj);
                    act += (0.5 + 128 * test::kU32) * d * std::abs(w);
                    blk += std::abs(w) * (std::abs(xj) + d);
                }
                ref[static_cast<size_t>(r)] = s;
                const double g = test::gamma_n(in + 1, test::kU32) + test::gamma_n(in, test::kU64);
                tol[static_cast<size_t>(r)] = weight_type_is_block(t) ? act + test::gamma_n(nb + 6, test::kU32) * blk + (test::kU32 + g) * m
                                                                      : g * m;
            }
            std::vector<float> first;
            for (rt::KernelIsa isa : {rt::KernelIsa::sse2, rt::KernelIsa::avx2, rt::KernelIsa::avx512}) {
                if (!rt::kernel_isa_supported(isa)) continue;
                rt::kernel_isa_set(isa);
                for (int threads : {1, 2, 3}) {
                    omp_set_num_threads(threads);
                    std::vector<float> y(static_cast<size_t>(out)), ya = y0, g(y.size()), up(y.size()), y2(y.size());
                    rt::gemv(M, x.data(), y.data(), out, in);
                    rt::gemv(M, x.data(), ya.data(), out, in, /*accumulate=*/true);
                    rt::gemv2(M, g.data(), M2, up.data(), x.data(), out, in);
                    rt::gemv(M2, x.data(), y2.data(), out, in);
                    for (int64_t r = 0; r < out; ++r) {
                        const size_t i = static_cast<size_t>(r);
                        ASSERT_LE(std::abs(static_cast<double>(y[i]) - ref[i]), tol[i])
                            << rt::kernel_isa_name(isa) << ", " << threads << " thread(s), row " << r << ": " << y[i] << " vs " << ref[i];
                        ASSERT_EQ(ya[i], y0[i] + y[i]) << "accumulate adds the product to y, row " << r;
                        ASSERT_EQ(g[i], y[i]) << "gemv2's first product differs from gemv, row " << r;
                        ASSERT_EQ(up[i], y2[i]) << "gemv2's second product differs from gemv, row " << r;
                    }
                    // Every build and thread count gives the same bits (docs/runtime.md).
                    if (first.empty()) first = y;
                    ASSERT_EQ(y, first) << rt::kernel_isa_name(isa) << ", " << threads << " thread(s) changed the bits";
                }
            }
            // Prefill: T rows through panels of widened weights and BLAS, against the same reference.
            const int64_t T = 3;
            std::vector<float> X(static_cast<size_t>(T * in)), Y(static_cast<size_t>(T * out));
            for (int64_t tt = 0; tt < T; ++tt) std::memcpy(X.data() + tt * in, x.data(), static_cast<size_t>(in) * sizeof(float));
            rt::matmul_wt(X.data(), M, Y.data(), T, in, out);
            for (int64_t tt = 0; tt < T; ++tt) {
                for (int64_t r = 0; r < out; ++r) {
                    double m = 0;
                    for (int64_t j = 0; j < in; ++j) m += std::abs(static_cast<double>(Wd[static_cast<size_t>(r * in + j)]) * x[static_cast<size_t>(j)]);
                    const double g = test::gamma_n(in + 1, test::kU32) + test::gamma_n(in, test::kU64);
                    ASSERT_LE(std::abs(static_cast<double>(Y[static_cast<size_t>(tt * out + r)]) - ref[static_cast<size_t>(r)]), g * m)
                        << "prefill row " << tt << ", output " << r;
                }
            }
            std::vector<float> row(static_cast<size_t>(in));
            rt::matrix_row(M, out - 1, in, row.data());
            ASSERT_EQ(0, std::memcmp(row.data(), Wd.data() + (out - 1) * in, static_cast<size_t>(in) * sizeof(float))) << "matrix_row";
        }
    }
    omp_set_num_threads(threads_before);
    rt::kernel_isa_set(isa_before);
}

// Batched decode forms each row of a product as a one-row call forms it (matmul_wt_rowwise),
// so that a sequence's logits do not depend on the sequences it shares a step with. Checked bit
// for bit against one-row calls, for every stored type, every kernel build this CPU runs, odd
// shapes, batches of 1 to 5 rows, 1 to 3 threads, with and without accumulation.
TEST(RuntimeKernels, RowwiseProductsEqualOneRowCallsBitForBit) {
    std::mt19937 gen(7);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    const int threads_before = omp_get_max_threads();
    const rt::KernelIsa isa_before = rt::kernel_isa();
    const WeightType kAll[] = {WeightType::f32, WeightType::bf16, WeightType::f16, WeightType::q8, WeightType::q4};
    for (rt::KernelIsa isa : {rt::KernelIsa::sse2, rt::KernelIsa::avx2, rt::KernelIsa::avx512}) {
        if (!rt::kernel_isa_supported(isa)) continue;
        rt::kernel_isa_set(isa);
        for (WeightType t : kAll) {
            for (auto [out, in] : {std::pair<int64_t, int64_t>{1, 1}, {5, 33}, {37, 100}, {300, 517}}) {
                std::vector<float> W(static_cast<size_t>(out * in)), W2(W.size());
                for (float& v : W) v = u(gen);
                for (float& v : W2) v = u(gen);
                const std::vector<uint8_t> q = t == WeightType::f32 ? std::vector<uint8_t>() : quantize(t, W, out, in);
                const std::vector<uint8_t> q2 = t == WeightType::f32 ? std::vector<uint8_t>() : quantize(t, W2, out, in);
                const rt::Matrix M = t == WeightType::f32 ? rt::Matrix(W.data()) : rt::Matrix(q.data(), t);
                const rt::Matrix M2 = t == WeightType::f32 ? rt::Matrix(W2.data()) : rt::Matrix(q2.data(), t);
                for (int64_t B : {1, 2, 5}) {
                    std::vector<float> x(static_cast<size_t>(B * in)), y0(static_cast<size_t>(B * out));
                    for (float& v : x) v = u(gen);
                    for (float& v : y0) v = u(gen);
                    for (int threads : {1, 2, 3}) {
                        omp_set_num_threads(threads);
                        std::vector<float> want(y0.size()), want_acc = y0, want2(y0.size()), want_g(y0.size()), want_u(y0.size());
                        for (int64_t b = 0; b < B; ++b) {
                            rt::matmul_wt(&x[static_cast<size_t>(b * in)], M, &want[static_cast<size_t>(b * out)], 1, in, out);
                            rt::matmul_wt(&x[static_cast<size_t>(b * in)], M, &want_acc[static_cast<size_t>(b * out)], 1, in, out, true);
                            rt::matmul2_wt(&x[static_cast<size_t>(b * in)], M, &want_g[static_cast<size_t>(b * out)], M2,
                                           &want_u[static_cast<size_t>(b * out)], 1, in, out);
                        }
                        std::vector<float> got(y0.size()), got_acc = y0, got_g(y0.size()), got_u(y0.size());
                        rt::matmul_wt_rowwise(x.data(), M, got.data(), B, in, out);
                        rt::matmul_wt_rowwise(x.data(), M, got_acc.data(), B, in, out, true);
                        rt::matmul2_wt_rowwise(x.data(), M, got_g.data(), M2, got_u.data(), B, in, out);
                        const std::string what = std::string(rt::kernel_isa_name(isa)) + " " + weight_type_name(t) + " " + std::to_string(out) +
                                                 "x" + std::to_string(in) + " B=" + std::to_string(B) + " threads=" + std::to_string(threads);
                        EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float))) << what;
                        EXPECT_EQ(0, std::memcmp(got_acc.data(), want_acc.data(), got.size() * sizeof(float))) << what << " accumulate";
                        EXPECT_EQ(0, std::memcmp(got_g.data(), want_g.data(), got.size() * sizeof(float))) << what << " gate";
                        EXPECT_EQ(0, std::memcmp(got_u.data(), want_u.data(), got.size() * sizeof(float))) << what << " up";
                    }
                }
            }
        }
    }
    omp_set_num_threads(threads_before);
    rt::kernel_isa_set(isa_before);
}
