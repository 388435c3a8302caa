// kernels.cpp: see kernels.h.
#include "runtime/kernels.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"
#include "format/dtype.h"
#include "runtime/kernels_common.h"

namespace chronos::rt {

namespace {

using namespace kernels_common;

// y[r] (+)= W[r, :] . x for rows r0 <= r < r1, one row after the other, so the matrix is read
// as one sequential stream (what the hardware prefetcher follows best). Four vectors of eight
// running sums per row, combined in a fixed order: the same input gives the same bits whichever
// thread computes the row. Inlined into one build per ISA (below).
__attribute__((always_inline)) inline void gemv_rows_body(const float* W, const float* x, float* y, int64_t r0, int64_t r1,
                                                          int64_t in, bool accumulate) {
    const int64_t in32 = in & ~int64_t{31}, in8 = in & ~int64_t{7};
    for (int64_t r = r0; r < r1; ++r) {
        const float* w = W + r * in;
        v8f a0 = {}, a1 = {}, a2 = {}, a3 = {};
        int64_t j = 0;
        for (; j < in32; j += 32) {
            a0 += load8(w + j) * load8(x + j);
            a1 += load8(w + j + 8) * load8(x + j + 8);
            a2 += load8(w + j + 16) * load8(x + j + 16);
            a3 += load8(w + j + 24) * load8(x + j + 24);
        }
        for (; j < in8; j += 8) a0 += load8(w + j) * load8(x + j);
        float s = sum8((a0 + a1) + (a2 + a3));
        for (; j < in; ++j) s += w[j] * x[j];
        y[r] = accumulate ? y[r] + s : s;
    }
}

// The rows r0 <= r < r1 of W against B vectors x [B, in] -> y [B, out] (row r of vector b at
// y[b*out + r]): each row of W is read from memory once and then from L1 for the other
// vectors, and every output is formed exactly as gemv_rows_body forms it.
__attribute__((always_inline)) inline void gemv_rows_multi_body(const float* W, const float* x, float* y, int64_t B, int64_t r0,
                                                                int64_t r1, int64_t in, int64_t out, bool accumulate) {
    for (int64_t r = r0; r < r1; ++r) {
        for (int64_t b = 0; b < B; ++b) gemv_rows_body(W + r * in, x + b * in, y + b * out + r, 0, 1, in, accumulate);
    }
}

__attribute__((always_inline)) inline float dot_body(const float* a, const float* b, int64_t n) {
    const int64_t n8 = n & ~int64_t{7};
    v8f acc = {};
    int64_t i = 0;
    for (; i < n8; i += 8) acc += load8(a + i) * load8(b + i);
    float s = sum8(acc);
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

// One build of each vector kernel per instruction set. Without -ffast-math and with
// -ffp-contract=off (set for the runtime in CMakeLists.txt), both builds perform the same
// operations in the same order.
void gemv_rows_sse2(const float* W, const float* x, float* y, int64_t r0, int64_t r1, int64_t in, bool accumulate) {
    gemv_rows_body(W, x, y, r0, r1, in, accumulate);
}
__attribute__((target("arch=x86-64-v3"))) void gemv_rows_avx2(const float* W, const float* x, float* y, int64_t r0, int64_t r1,
                                                               int64_t in, bool accumulate) {
    gemv_rows_body(W, x, y, r0, r1, in, accumulate);
}
void gemv_rows_multi_sse2(const float* W, const float* x, float* y, int64_t B, int64_t r0, int64_t r1, int64_t in, int64_t out,
                          bool accumulate) {
    gemv_rows_multi_body(W, x, y, B, r0, r1, in, out, accumulate);
}
__attribute__((target("arch=x86-64-v3"))) void gemv_rows_multi_avx2(const float* W, const float* x, float* y, int64_t B, int64_t r0,
                                                                     int64_t r1, int64_t in, int64_t out, bool accumulate) {
    gemv_rows_multi_body(W, x, y, B, r0, r1, in, out, accumulate);
}
float dot_sse2(const float* a, const float* b, int64_t n) { return dot_body(a, b, n); }
__attribute__((target("arch=x86-64-v3"))) float dot_avx2(const float* a, const float* b, int64_t n) { return dot_body(a, b, n); }

// The selected build: -1 until the first call reads CHRONOS_KERNELS or the CPU's features.
std::atomic<int> g_isa{-1};

KernelIsa isa_active() {
    int isa = g_isa.load(std::memory_order_relaxed);
    if (isa < 0) {
        const char* env = std::getenv("CHRONOS_KERNELS");
        KernelIsa pick = kernel_isa_supported(KernelIsa::avx512) ? KernelIsa::avx512
                         : kernel_isa_supported(KernelIsa::avx2) ? KernelIsa::avx2
                                                                 : KernelIsa::sse2;
        if (env != nullptr && *env != '\0') pick = kernel_isa_parse(env);
        kernel_isa_set(pick);
        isa = static_cast<int>(pick);
    }
    return static_cast<KernelIsa>(isa);
}

void gemv_rows(const float* W, const float* x, float* y, int64_t r0, int64_t r1, int64_t in, bool accumulate) {
    if (isa_active() != KernelIsa::sse2) gemv_rows_avx2(W, x, y, r0, r1, in, accumulate);
    else gemv_rows_sse2(W, x, y, r0, r1, in, accumulate);
}

void gemv_rows_multi(const float* W, const float* x, float* y, int64_t B, int64_t r0, int64_t r1, int64_t in, int64_t out,
                     bool accumulate) {
    if (isa_active() != KernelIsa::sse2) gemv_rows_multi_avx2(W, x, y, B, r0, r1, in, out, accumulate);
    else gemv_rows_multi_sse2(W, x, y, B, r0, r1, in, out, accumulate);
}

}  // namespace

const char* kernel_isa_name(KernelIsa isa) { return isa == KernelIsa::avx512 ? "avx512" : isa == KernelIsa::avx2 ? "avx2" : "sse2"; }

KernelIsa kernel_isa_parse(const std::string& name) {
    if (name == "sse2") return KernelIsa::sse2;
    if (name == "avx2") return KernelIsa::avx2;
    if (name == "avx512") return KernelIsa::avx512;
    fail("CHRONOS_KERNELS='{}' names no kernel build (sse2, avx2 or avx512)", name);
}

bool kernel_isa_supported(KernelIsa isa) {
    if (isa == KernelIsa::sse2) return true;  // part of x86-64
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2") &&
                      __builtin_cpu_supports("f16c");
    if (isa == KernelIsa::avx2) return avx2;
    return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512vnni");
}

void kernel_isa_set(KernelIsa isa) {
    if (!kernel_isa_supported(isa)) fail("this CPU cannot run the {} build of the kernels", kernel_isa_name(isa));
    g_isa.store(static_cast<int>(isa), std::memory_order_relaxed);
}

KernelIsa kernel_isa() { return isa_active(); }

float dot(const float* a, const float* b, int64_t n) { return isa_active() != KernelIsa::sse2 ? dot_avx2(a, b, n) : dot_sse2(a, b, n); }

void gemv(const float* W, const float* x, float* y, int64_t out, int64_t in, bool accumulate) {
    if (gemv_on_caller(out * in)) {
        gemv_rows(W, x, y, 0, out, in, accumulate);
        return;
    }
#pragma omp parallel
    {
        int64_t r0, r1;
        gemv_block(out, omp_get_thread_num(), omp_get_num_threads(), &r0, &r1);
        gemv_rows(W, x, y, r0, r1, in, accumulate);
    }
}

void gemv2(const float* W1, float* y1, const float* W2, float* y2, const float* x, int64_t out, int64_t in) {
    if (gemv_on_caller(out * in)) {  // per product, as before both were one call
        gemv_rows(W1, x, y1, 0, out, in, false);
        gemv_rows(W2, x, y2, 0, out, in, false);
        return;
    }
#pragma omp parallel
    {
        // Both products as one list of 2*out rows, so each thread streams an equal share.
        int64_t r0, r1;
        gemv_block(2 * out, omp_get_thread_num(), omp_get_num_threads(), &r0, &r1);
        if (r0 < out) gemv_rows(W1, x, y1, r0, std::min(r1, out), in, false);
        if (r1 > out) gemv_rows(W2, x, y2, std::max(r0, out) - out, r1 - out, in, false);
    }
}

void gemv_multi(const float* W, const float* x, float* y, int64_t B, int64_t out, int64_t in, bool accumulate) {
    if (gemv_on_caller(out * in)) {
        gemv_rows_multi(W, x, y, B, 0, out, in, out, accumulate);
        return;
    }
#pragma omp parallel
    {
        int64_t r0, r1;
        gemv_block(out, omp_get_thread_num(), omp_get_num_threads(), &r0, &r1);
        gemv_rows_multi(W, x, y, B, r0, r1, in, out, accumulate);
    }
}

void rmsnorm(const float* x, const float* w, float* y, int64_t T, int64_t n, double eps) {
    for (int64_t t = 0; t < T; ++t) {
        const float* xr = x + t * n;
        float* yr = y + t * n;
        double ss = 0;
        for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xr[i]) * xr[i];
        const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
        for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * inv * w[i];
    }
}

void rope_rotate(float* x, int64_t d, int64_t pos, const double* inv_freq, double scale) {
    const int64_t half = d / 2;
    for (int64_t i = 0; i < half; ++i) {
        const double angle = static_cast<double>(pos) * inv_freq[i];
        const float c = static_cast<float>(std::cos(angle) * scale), s = static_cast<float>(std::sin(angle) * scale);
        const float a = x[i], b = x[i + half];
        x[i] = a * c - b * s;
        x[i + half] = b * c + a * s;
    }
}

void softmax(float* x, int64_t n) {
    float m = x[0];
    for (int64_t i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - m);
        sum += x[i];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void silu_mul(float* a, const float* b, int64_t n) {
    for (int64_t i = 0; i < n; ++i) a[i] = a[i] / (1.0f + std::exp(-a[i])) * b[i];
}

void topk(const float* x, int64_t n, int64_t k, int32_t* idx) {
    for (int64_t j = 0; j < k; ++j) {
        int32_t best = -1;
        for (int64_t i = 0; i < n; ++i) {
            bool taken = false;
            for (int64_t p = 0; p < j; ++p) taken |= idx[p] == i;
            if (taken) continue;
            if (best < 0 || x[i] > x[best]) best = static_cast<int32_t>(i);
        }
        idx[j] = best;
    }
}

}  // namespace chronos::rt
