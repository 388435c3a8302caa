// kernels_narrow.cpp: the products on weights in their stored type (weight_type.h) — decode's
// matrix-vector product for bf16, f16, q8 and q4 rows, prefill's matrix product by panels, and
// the entry points (gemv, gemv2, matmul_wt, matmul2_wt on a Matrix) that pick the f32 kernels
// (kernels.cpp) or these by the matrix's type.
//
// q8 and q4 rows multiply against activations quantized per block of 32 (int8 with one fp32
// scale, as the fast engines do), so that the inner loop is an integer dot product (AVX2
// maddubs, or AVX-512 VNNI dpbusd). bf16 and f16 widen in registers: decode is bound by the
// bytes it reads, and AVX512-BF16's dot product would round the activations to bf16 as well.
#include <cblas.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "format/dtype.h"
#include "runtime/kernels.h"
#include "runtime/kernels_common.h"

namespace chronos::rt {

namespace {

using namespace kernels_common;  // v8f, load8, sum8, the row split
typedef uint16_t v8u16 __attribute__((vector_size(16)));
typedef uint32_t v8u32 __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

// Activations quantized per block of 32 to int8: block b is x ~ d[b] * q[32b .. 32b+31], with
// dsum[b] = d[b] * (the sum of its q), q4's minimum term. The q are contiguous, so two blocks
// are one 64-byte load.
struct XQuant {
    float* d;
    float* dsum;
    int8_t* q;
};

}  // namespace

// One build of the narrow row products per instruction set (see kernels_narrow.inc). GCC 12's
// AVX-512 casts and inserts start from _mm512_undefined_*(), a variable initialised with itself,
// which its own -Wuninitialized reports wherever they are inlined: not a fault of this code.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define CHRONOS_ISA 0
namespace isa_sse2 {
#include "runtime/kernels_narrow.inc"
}  // namespace isa_sse2
#undef CHRONOS_ISA
#define CHRONOS_ISA 1
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v3")
namespace isa_avx2 {
#include "runtime/kernels_narrow.inc"
}  // namespace isa_avx2
#pragma GCC pop_options
#undef CHRONOS_ISA
#define CHRONOS_ISA 2
#pragma GCC push_options
#pragma GCC target("arch=x86-64-v4,avx512vnni")
namespace isa_avx512 {
#include "runtime/kernels_narrow.inc"
}  // namespace isa_avx512
#pragma GCC pop_options
#undef CHRONOS_ISA

namespace {

std::atomic<bool> g_quantize_activations{true};

void quantize_x(const float* x, int64_t in, const XQuant& xq) {
    switch (kernel_isa()) {
        case KernelIsa::avx512: isa_avx512::quantize_x(x, in, xq); break;
        case KernelIsa::avx2: isa_avx2::quantize_x(x, in, xq); break;
        case KernelIsa::sse2: isa_sse2::quantize_x(x, in, xq); break;
    }
}

void rows_narrow(const Matrix& W, const float* x, const XQuant& xb, float* y, int64_t r0, int64_t r1, int64_t in,
                 bool accumulate) {
    switch (kernel_isa()) {
        case KernelIsa::avx512: isa_avx512::rows_narrow(W.data, W.type, x, xb, y, r0, r1, in, accumulate); break;
        case KernelIsa::avx2: isa_avx2::rows_narrow(W.data, W.type, x, xb, y, r0, r1, in, accumulate); break;
        case KernelIsa::sse2: isa_sse2::rows_narrow(W.data, W.type, x, xb, y, r0, r1, in, accumulate); break;
    }
}

// The calling thread's quantized activations: grown on first use, so decode allocates nothing
// after its first step. (Team members read the caller's buffer through the returned pointers.)
XQuant quantized(const Matrix& W, const float* x, int64_t in) {
    if (!weight_type_is_block(W.type)) return {nullptr, nullptr, nullptr};
    thread_local std::vector<float> d, dsum;
    thread_local std::vector<int8_t> q;
    const auto nb = static_cast<size_t>((in + kQuantBlock - 1) / kQuantBlock);
    if (d.size() < nb) {
        d.resize(nb);
        dsum.resize(nb);
        q.resize(nb * static_cast<size_t>(kQuantBlock));
    }
    const XQuant xq{d.data(), dsum.data(), q.data()};
    quantize_x(x, in, xq);
    return xq;
}

void gemv_narrow(const Matrix& W, const float* x, float* y, int64_t out, int64_t in, bool accumulate) {
    const XQuant xb = quantized(W, x, in);
    if (gemv_on_caller(out * in)) {
        rows_narrow(W, x, xb, y, 0, out, in, accumulate);
        return;
    }
#pragma omp parallel
    {
        int64_t r0, r1;
        gemv_block(out, omp_get_thread_num(), omp_get_num_threads(), &r0, &r1);
        rows_narrow(W, x, xb, y, r0, r1, in, accumulate);
    }
}

// y [T, out] (+)= x [T, in] W^T for a narrow W: panels of rows widened to fp32 (the values
// weight_dequantize_row gives), then one BLAS GEMM per panel. The activations stay fp32.
int64_t matmul_narrow_panel_rows(int64_t in) { return std::max<int64_t>(16, (int64_t{1} << 18) / std::max<int64_t>(in, 1)); }

void matmul_narrow(const float* x, const Matrix& W, float* y, int64_t T, int64_t in, int64_t out, bool accumulate) {
    thread_local std::vector<float> panel;
    const int64_t rows = matmul_narrow_panel_rows(in);  // ~1 MiB of fp32
    if (panel.size() < static_cast<size_t>(rows * in)) panel.resize(static_cast<size_t>(rows * in));
    float* wide = panel.data();  // the caller's panel (a team member's thread_local is another)
    const uint64_t rb = weight_row_bytes(W.type, in);
    for (int64_t r0 = 0; r0 < out; r0 += rows) {
        const int64_t n = std::min(rows, out - r0);
#pragma omp parallel for schedule(static) if (n * in >= 32 * 1024 && !omp_in_parallel())
        for (int64_t r = 0; r < n; ++r) weight_dequantize_row(W.type, W.data + static_cast<uint64_t>(r0 + r) * rb, in, wide + r * in);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(T), static_cast<blasint>(n),
                    static_cast<blasint>(in), 1.0f, x, static_cast<blasint>(in), wide, static_cast<blasint>(in),
                    accumulate ? 1.0f : 0.0f, y + r0, static_cast<blasint>(out));
    }
}

}  // namespace

int64_t matmul_narrow_panel_floats(int64_t in) { return matmul_narrow_panel_rows(in) * in; }

void gemv(const Matrix& W, const float* x, float* y, int64_t out, int64_t in, bool accumulate) {
    if (W.type == WeightType::f32) {
        gemv(W.f32(), x, y, out, in, accumulate);
    } else {
        gemv_narrow(W, x, y, out, in, accumulate);
    }
}

void gemv2(const Matrix& W1, float* y1, const Matrix& W2, float* y2, const float* x, int64_t out, int64_t in) {
    if (W1.type == WeightType::f32 && W2.type == WeightType::f32) {
        gemv2(W1.f32(), y1, W2.f32(), y2, x, out, in);
        return;
    }
    CHRONOS_ASSERT(W1.type == W2.type, "gemv2 of two matrices of different types");
    const XQuant xb = quantized(W1, x, in);
    if (gemv_on_caller(out * in)) {
        rows_narrow(W1, x, xb, y1, 0, out, in, false);
        rows_narrow(W2, x, xb, y2, 0, out, in, false);
        return;
    }
#pragma omp parallel
    {
        int64_t r0, r1;
        gemv_block(2 * out, omp_get_thread_num(), omp_get_num_threads(), &r0, &r1);
        if (r0 < out) rows_narrow(W1, x, xb, y1, r0, std::min(r1, out), in, false);
        if (r1 > out) rows_narrow(W2, x, xb, y2, std::max(r0, out) - out, r1 - out, in, false);
    }
}

void matmul_wt(const float* x, const Matrix& W, float* y, int64_t T, int64_t in, int64_t out, bool accumulate) {
    if (T == 1 && (!weight_type_is_block(W.type) || g_quantize_activations.load(std::memory_order_relaxed))) {
        gemv(W, x, y, out, in, accumulate);
    } else if (W.type == WeightType::f32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(T), static_cast<blasint>(out),
                    static_cast<blasint>(in), 1.0f, x, static_cast<blasint>(in), W.f32(), static_cast<blasint>(in),
                    accumulate ? 1.0f : 0.0f, y, static_cast<blasint>(out));
    } else {
        matmul_narrow(x, W, y, T, in, out, accumulate);
    }
}

void matmul2_wt(const float* x, const Matrix& W1, float* y1, const Matrix& W2, float* y2, int64_t T, int64_t in, int64_t out) {
    if (T == 1 && (!weight_type_is_block(W1.type) || g_quantize_activations.load(std::memory_order_relaxed))) {
        gemv2(W1, y1, W2, y2, x, out, in);
    } else {
        matmul_wt(x, W1, y1, T, in, out);
        matmul_wt(x, W2, y2, T, in, out);
    }
}

void matmul_wt_rowwise(const float* x, const Matrix& W, float* y, int64_t T, int64_t in, int64_t out, bool accumulate) {
    if (W.type == WeightType::f32) {
        gemv_multi(W.f32(), x, y, T, out, in, accumulate);
        return;
    }
    for (int64_t t = 0; t < T; ++t) matmul_wt(x + t * in, W, y + t * out, 1, in, out, accumulate);
}

void matmul2_wt_rowwise(const float* x, const Matrix& W1, float* y1, const Matrix& W2, float* y2, int64_t T, int64_t in, int64_t out) {
    if (T == 1) {
        matmul2_wt(x, W1, y1, W2, y2, 1, in, out);
        return;
    }
    matmul_wt_rowwise(x, W1, y1, T, in, out);
    matmul_wt_rowwise(x, W2, y2, T, in, out);
}

void kernel_quantize_activations(bool on) { g_quantize_activations.store(on, std::memory_order_relaxed); }

void matrix_row(const Matrix& W, int64_t r, int64_t cols, float* dst) {
    weight_dequantize_row(W.type, W.data + static_cast<uint64_t>(r) * weight_row_bytes(W.type, cols), cols, dst);
}

}  // namespace chronos::rt
