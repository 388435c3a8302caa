// kernels.cpp: see kernels.h.
#include "runtime/kernels.h"

#include <cblas.h>

#include <cmath>

#include "format/dtype.h"

namespace chronos::rt {

void matmul_wt(const float* x, const float* W, float* y, int64_t T, int64_t in, int64_t out, bool accumulate) {
    const float beta = accumulate ? 1.0f : 0.0f;
    if (T == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(out), static_cast<blasint>(in), 1.0f, W,
                    static_cast<blasint>(in), x, 1, beta, y, 1);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(T), static_cast<blasint>(out),
                    static_cast<blasint>(in), 1.0f, x, static_cast<blasint>(in), W, static_cast<blasint>(in), beta, y,
                    static_cast<blasint>(out));
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

void rope_rotate(float* x, int64_t d, int64_t pos, double theta) {
    const int64_t half = d / 2;
    for (int64_t i = 0; i < half; ++i) {
        const double angle = static_cast<double>(pos) * std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(d));
        const float c = static_cast<float>(std::cos(angle)), s = static_cast<float>(std::sin(angle));
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

void bf16_to_f32_n(const uint16_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

void f16_to_f32_n(const uint16_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

}  // namespace chronos::rt
