// kernels.h: the runtime's compute kernels — plain loops with OpenMP, BLAS GEMM (OpenBLAS, OpenMP
// build) for prefill and our own matrix-vector product for decode (see gemv). All tensors are
// fp32, row-major, in checkpoint layout: a weight W of shape [out, in] maps x [in] to W x [out].
// Nothing here allocates.
//
//     chronos::rt::matmul_wt(x, W, y, T, in, out);     // y[T, out] = x[T, in] W^T
//     chronos::rt::gemv(W, x, y, out, in);             // y[out] = W[out, in] x[in] (decode)
//     chronos::rt::rmsnorm(x, w, y, T, H, 1e-6);
#pragma once

#include <cstdint>
#include <string>

namespace chronos::rt {

// Instruction sets the runtime's own vector kernels (gemv, gemv2, dot) are built for. The best
// one the CPU runs is used unless the environment variable CHRONOS_KERNELS names another
// (sse2 | avx2), so the tests can run every build a machine supports.
enum class KernelIsa : uint8_t { sse2, avx2 };
const char* kernel_isa_name(KernelIsa isa);
KernelIsa kernel_isa_parse(const std::string& name);  // throws on an unknown name
bool kernel_isa_supported(KernelIsa isa);             // sse2 always; avx2 with AVX2, FMA and BMI2
KernelIsa kernel_isa();                               // the build in use
void kernel_isa_set(KernelIsa isa);                   // throws if the CPU cannot run it

// y[out] = W[out, in] · x[in] (+ y if accumulate): the decode product. Rows are split across the
// OpenMP team (one block per thread); small products and calls from inside a parallel region
// run on the calling thread. Deterministic: the same inputs give the same bits.
void gemv(const float* W, const float* x, float* y, int64_t out, int64_t in, bool accumulate = false);

// a[n] · b[n], eight running sums in a fixed order (attention's scores against a strided cache).
float dot(const float* a, const float* b, int64_t n);

// y1[out] = W1 · x and y2[out] = W2 · x in one parallel region (SwiGLU's gate and up).
void gemv2(const float* W1, float* y1, const float* W2, float* y2, const float* x, int64_t out, int64_t in);

// y[T, out] = x[T, in] · W[out, in]^T (+ y if accumulate). gemv for T == 1, BLAS GEMM otherwise.
void matmul_wt(const float* x, const float* W, float* y, int64_t T, int64_t in, int64_t out, bool accumulate = false);

// y1 = x · W1^T and y2 = x · W2^T, both [T, out] (SwiGLU's gate and up): gemv2 for T == 1.
void matmul2_wt(const float* x, const float* W1, float* y1, const float* W2, float* y2, int64_t T, int64_t in, int64_t out);

// y[T, n] = x / sqrt(mean(x^2) + eps) * w, row by row (sums in double). y may alias x.
void rmsnorm(const float* x, const float* w, float* y, int64_t T, int64_t n, double eps);

// RoPE (Llama/NeoX rotate-half) of one vector x[d] at absolute position `pos`, in place.
// Angles pos * theta^(-2i/d) are computed in double and rounded to float, as the train wing does.
void rope_rotate(float* x, int64_t d, int64_t pos, double theta);

// x[n] <- softmax(x[n]) in place (max-subtracted, sums in double).
void softmax(float* x, int64_t n);

// a[n] <- silu(a[n]) * b[n]
void silu_mul(float* a, const float* b, int64_t n);

// Indices of the k largest values of x[n], largest first (ties: lower index first), into idx[k].
void topk(const float* x, int64_t n, int64_t k, int32_t* idx);

// Converts n stored values (bf16 or f16 bits) to fp32.
void bf16_to_f32_n(const uint16_t* src, float* dst, int64_t n);
void f16_to_f32_n(const uint16_t* src, float* dst, int64_t n);

}  // namespace chronos::rt
