// machine_bench.cpp: see machine_bench.h.
#include "cli/machine_bench.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "runtime/kernels.h"

namespace chronos {

// Best GFLOP/s of `reps` single-precision n x n x n products.
double sgemm_peak_gflops(int n, int reps) {
    std::vector<float> a(static_cast<size_t>(n) * n, 0.5f), b(static_cast<size_t>(n) * n, 0.25f), c(static_cast<size_t>(n) * n);
    double best = 0;
    for (int r = 0; r < reps + 1; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r > 0) best = std::max(best, 2.0 * n * n * static_cast<double>(n) / s / 1e9);  // first run warms up
    }
    return best;
}

// Best GB/s of `reps` passes summing `bytes` of floats with `threads` threads: the rate at
// which this machine streams data from RAM, which bounds a decode step that reads every active
// weight once. The buffer should be far larger than the last-level cache.
double read_bandwidth_gbs(size_t bytes, int reps, int threads) {
    const int64_t n = static_cast<int64_t>(bytes / sizeof(float));
    std::vector<float> buf(static_cast<size_t>(n));
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) buf[static_cast<size_t>(i)] = 1.0f;  // first touch by the reading threads
    double best = 0;
    volatile double sink = 0;  // keeps the sums observable
    for (int r = 0; r < reps + 1; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        // 16 running sums per thread, so that the adds pipeline: one running sum is bound by the
        // add latency (about 4 GB/s per core here), not by memory.
        float total = 0;
        const int64_t blocks = n / 16;
#pragma omp parallel num_threads(threads) reduction(+ : total)
        {
            float acc[16] = {};
#pragma omp for schedule(static)
            for (int64_t b = 0; b < blocks; ++b) {
                const float* p = buf.data() + b * 16;
                for (int j = 0; j < 16; ++j) acc[j] += p[j];
            }
            for (int j = 0; j < 16; ++j) total += acc[j];
        }
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        sink = sink + total;
        if (r > 0) best = std::max(best, static_cast<double>(n) * sizeof(float) / s / 1e9);
    }
    return best;
}

// Best GB/s of matrix bytes streamed by a matrix-vector product (y = W x), OpenBLAS's sgemv or
// the runtime's own rt::gemv, cycling over enough distinct [rows, cols] matrices to fill
// `bytes`, as decode does over its layers.
double gemv_bandwidth_gbs(Gemv which, size_t bytes, int rows, int cols, int reps) {
    const size_t per = static_cast<size_t>(rows) * static_cast<size_t>(cols);
    const size_t count = std::max<size_t>(1, bytes / (per * sizeof(float)));
    std::vector<std::vector<float>> w(count, std::vector<float>(per, 0.01f));
    std::vector<float> x(static_cast<size_t>(cols), 1.0f), y(static_cast<size_t>(rows));
    double best = 0;
    for (int r = 0; r < reps + 1; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        for (const auto& m : w) {
            if (which == Gemv::openblas) {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, m.data(), cols, x.data(), 1, 0.0f, y.data(), 1);
            } else {
                rt::gemv(m.data(), x.data(), y.data(), rows, cols);
            }
        }
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r > 0) best = std::max(best, static_cast<double>(count * per * sizeof(float)) / s / 1e9);
    }
    return best;
}

double gemv_weight_rate(WeightType type, size_t bytes, int rows, int cols, int reps) {
    const uint64_t per = weight_matrix_bytes(type, rows, cols);
    const size_t count = std::max<size_t>(1, bytes / per);
    std::vector<float> src(static_cast<size_t>(cols));
    std::vector<std::vector<uint8_t>> w(count, std::vector<uint8_t>(per));
    for (size_t m = 0; m < count; ++m) {
        for (int r = 0; r < rows; ++r) {
            for (int c = 0; c < cols; ++c) src[static_cast<size_t>(c)] = 0.01f * static_cast<float>((r * 7 + c * 3 + static_cast<int>(m)) % 17 - 8);
            weight_quantize_row(type, src.data(), cols, w[m].data() + static_cast<uint64_t>(r) * weight_row_bytes(type, cols));
        }
    }
    std::vector<float> x(static_cast<size_t>(cols), 1.0f), y(static_cast<size_t>(rows));
    double best = 0;
    for (int r = 0; r < reps + 1; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        for (const auto& m : w) rt::gemv(rt::Matrix(m.data(), type), x.data(), y.data(), rows, cols);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r > 0) best = std::max(best, static_cast<double>(count) * rows * cols / s);
    }
    return best;
}

}  // namespace chronos
