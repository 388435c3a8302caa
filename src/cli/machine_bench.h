// machine_bench.h: what this machine does, measured: the single-precision GEMM peak (the
// reference of the training FLOP share) and how fast it streams weights from RAM (the bound of
// decode). Used by `chronos bench sgemm`, `chronos bench membw` and `chronos bench
// pretrain-report`.
//
//     double peak = chronos::sgemm_peak_gflops(1536, 10);       // best of 10 products
//     double gbs = chronos::read_bandwidth_gbs(1ull << 30, 5, 2);
#pragma once

#include "format/weight_type.h"

#include <cstddef>

namespace chronos {

// Best GFLOP/s of `reps` single-precision n x n x n products (one untimed warm-up first).
double sgemm_peak_gflops(int n, int reps);

// Best GB/s of `reps` passes summing `bytes` of floats with `threads` threads. The buffer
// should be far larger than the last-level cache.
double read_bandwidth_gbs(size_t bytes, int reps, int threads);

enum class Gemv { openblas, runtime };

// Best GB/s of matrix bytes streamed by y = W x, OpenBLAS's sgemv or the runtime's rt::gemv,
// cycling over enough distinct [rows, cols] matrices to fill `bytes`, as decode does over its
// layers.
double gemv_bandwidth_gbs(Gemv which, size_t bytes, int rows, int cols, int reps);
// Weights per second of the runtime's decode product on matrices stored as `type`, cycling
// through about `bytes` of them (best of reps).
double gemv_weight_rate(WeightType type, size_t bytes, int rows, int cols, int reps);

}  // namespace chronos
