// kernels.h: the runtime's compute kernels — plain loops with OpenMP, BLAS GEMM (OpenBLAS, OpenMP
// build) for prefill and our own matrix-vector products for decode (see gemv). Activations are
// fp32; weights are fp32 or a narrower stored type (format/weight_type.h), row-major in
// checkpoint layout: a weight W of shape [out, in] maps x [in] to W x [out]. Nothing here
// allocates, except the per-thread scratch of the narrow products on their first call
// (kernels_narrow.cpp).
//
//     chronos::rt::matmul_wt(x, W, y, T, in, out);     // y[T, out] = x[T, in] W^T, W any Matrix
//     chronos::rt::gemv(W, x, y, out, in);             // y[out] = W[out, in] x[in] (decode)
//     chronos::rt::Matrix q(bytes, WeightType::q4);    // a q4 matrix; a const float* converts to f32
//     chronos::rt::rmsnorm(x, w, y, T, H, 1e-6);
#pragma once

#include <cstdint>
#include <string>

#include "core/error.h"
#include "format/weight_type.h"

namespace chronos::rt {

// Instruction sets the runtime's own vector kernels (gemv, gemv2, dot) are built for. The best
// one the CPU runs is used unless the environment variable CHRONOS_KERNELS names another
// (sse2 | avx2 | avx512), so the tests can run every build a machine supports. avx512 differs
// from avx2 only in the q8/q4 products (VNNI's dpbusd); every build gives the same bits.
enum class KernelIsa : uint8_t { sse2, avx2, avx512 };
const char* kernel_isa_name(KernelIsa isa);
KernelIsa kernel_isa_parse(const std::string& name);  // throws on an unknown name
bool kernel_isa_supported(KernelIsa isa);             // sse2 always; avx2: AVX2, FMA, BMI2, F16C; avx512: + F, BW, VL, VNNI
KernelIsa kernel_isa();                               // the build in use
void kernel_isa_set(KernelIsa isa);                   // throws if the CPU cannot run it

// y[out] = W[out, in] · x[in] (+ y if accumulate): the decode product. Rows are split across the
// OpenMP team (one block per thread); small products and calls from inside a parallel region
// run on the calling thread. Deterministic: the same inputs give the same bits.
void gemv(const float* W, const float* x, float* y, int64_t out, int64_t in, bool accumulate = false);

// y[B, out] = x[B, in] · W[out, in]^T (+ y if accumulate), each row of y exactly as gemv(W, x_b)
// gives it, the matrix streamed once for all B vectors: batched decode, whose rows must not
// depend on which other sequences share the step.
void gemv_multi(const float* W, const float* x, float* y, int64_t B, int64_t out, int64_t in, bool accumulate = false);

// a[n] · b[n], eight running sums in a fixed order (attention's scores against a strided cache).
float dot(const float* a, const float* b, int64_t n);

// y1[out] = W1 · x and y2[out] = W2 · x in one parallel region (SwiGLU's gate and up).
void gemv2(const float* W1, float* y1, const float* W2, float* y2, const float* x, int64_t out, int64_t in);

// A weight matrix [out, in] in its stored type: rows of weight_row_bytes(type, in) bytes.
struct Matrix {
    const uint8_t* data = nullptr;
    WeightType type = WeightType::f32;
    Matrix() = default;
    Matrix(const float* w) : data(reinterpret_cast<const uint8_t*>(w)) {}  // NOLINT: an fp32 array is an f32 matrix
    Matrix(const uint8_t* bytes, WeightType t) : data(bytes), type(t) {}
    const float* f32() const {
        CHRONOS_ASSERT(type == WeightType::f32, "an fp32 view of a narrow matrix");
        return reinterpret_cast<const float*>(data);
    }
    explicit operator bool() const { return data != nullptr; }
};

// The decode products on a Matrix of any type. Narrow types: bf16/f16 widen in registers; q8/q4
// quantize x per block of 32 to int8 (one fp32 scale each) and form integer dot products.
void gemv(const Matrix& W, const float* x, float* y, int64_t out, int64_t in, bool accumulate = false);
void gemv2(const Matrix& W1, float* y1, const Matrix& W2, float* y2, const float* x, int64_t out, int64_t in);

// y[T, out] = x[T, in] · W[out, in]^T (+ y if accumulate). gemv for T == 1, BLAS GEMM otherwise
// (a narrow W by panels of rows widened to fp32).
void matmul_wt(const float* x, const Matrix& W, float* y, int64_t T, int64_t in, int64_t out, bool accumulate = false);
// The fp32 panel (floats) a narrow W of `in` columns is widened into per GEMM: ~1 MiB, at least
// 16 rows. The calling thread keeps the largest it has used (the peak-RSS estimate counts it).
int64_t matmul_narrow_panel_floats(int64_t in);

// y1 = x · W1^T and y2 = x · W2^T, both [T, out] (SwiGLU's gate and up): gemv2 for T == 1.
void matmul2_wt(const float* x, const Matrix& W1, float* y1, const Matrix& W2, float* y2, int64_t T, int64_t in, int64_t out);

// matmul_wt and matmul2_wt with every row of y exactly what a one-row call (T == 1) gives for
// that row of x: the products of batched decode. An f32 W is read once for all T rows
// (gemv_multi); a narrow W once per row.
void matmul_wt_rowwise(const float* x, const Matrix& W, float* y, int64_t T, int64_t in, int64_t out, bool accumulate = false);
void matmul2_wt_rowwise(const float* x, const Matrix& W1, float* y1, const Matrix& W2, float* y2, int64_t T, int64_t in, int64_t out);

// Whether single-row products on q8/q4 matrices (decode) quantize the activations (the default,
// the fast path) or widen the weights and keep fp32 activations as prefill does (a reference:
// the parity tests hold a whole network to the stored weights this way).
void kernel_quantize_activations(bool on);

// Row r of W [*, cols] as fp32 into dst [cols] (an embedding lookup).
void matrix_row(const Matrix& W, int64_t r, int64_t cols, float* dst);

// y[T, n] = x / sqrt(mean(x^2) + eps) * w, row by row (sums in double). y may alias x.
void rmsnorm(const float* x, const float* w, float* y, int64_t T, int64_t n, double eps);

// RoPE (Llama/NeoX rotate-half) of one vector x[d] at absolute position `pos`, in place.
// Angles pos * inv_freq[i] (rope_inv_freq: theta^(-2i/d), YaRN-blended when scaled) are computed
// in double, cos and sin times `scale` (YaRN's, else 1) rounded to float, as the train wing does.
void rope_rotate(float* x, int64_t d, int64_t pos, const double* inv_freq, double scale);

// x[n] <- softmax(x[n]) in place (max-subtracted, sums in double).
void softmax(float* x, int64_t n);

// a[n] <- silu(a[n]) * b[n]
void silu_mul(float* a, const float* b, int64_t n);

// Indices of the k largest values of x[n], largest first (ties: lower index first), into idx[k].
void topk(const float* x, int64_t n, int64_t k, int32_t* idx);

}  // namespace chronos::rt
