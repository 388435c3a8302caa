// weight_type.h: how a weight matrix is stored for the runtime — f32, bf16, f16, or one of two
// block formats (q8, q4) — with its exact byte layout, quantization and dequantization. The one
// home of these layouts: packs (pack.h), the narrow dense file and the kernels all use it.
//
// A matrix [rows, cols] is stored row by row; a row of `cols` weights takes
// weight_row_bytes(type, cols) bytes. The block formats cut each row into nb = ceil(cols / 32)
// blocks of 32 weights (the last one zero-padded), and store a row's scales before its quants,
// so that the kernels read the scales as one vector and two blocks' quants as one load:
//   q8  row = f16 d[nb], then int8 q[nb][32], q in [-127, 127];        w = d[b] * q[b][i]
//       (34 bytes per block)
//   q4  row = f16 d[nb], f16 m[nb], then uint8 n[nb][16], where n[b][j] holds q[b][j] in its
//       low nibble and q[b][j + 16] in its high nibble, q in [0, 15];  w = d[b] * q[b][i] + m[b]
//       (20 bytes per block)
// All values little-endian. The scales are rounded to f16 before the q are chosen, so that the
// stored q are the best for the stored scales.
//
//     std::vector<uint8_t> row(chronos::weight_row_bytes(WeightType::q4, 100));
//     chronos::weight_quantize_row(WeightType::q4, src, 100, row.data());
//     chronos::weight_dequantize_row(WeightType::q4, row.data(), 100, back);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chronos {

enum class WeightType : uint8_t { f32, bf16, f16, q8, q4 };

constexpr int64_t kQuantBlock = 32;      // weights per block of q8 and q4
constexpr int64_t kQ8BlockBytes = 34;    // per block: f16 d, int8[32]
constexpr int64_t kQ4BlockBytes = 20;    // per block: f16 d, f16 m, uint8[16]

const char* weight_type_name(WeightType t);                       // "f32", "bf16", "f16", "q8", "q4"
std::optional<WeightType> weight_type_parse(std::string_view name); // nullopt if unknown
bool weight_type_is_block(WeightType t);                           // q8, q4
// Bytes of one row of `cols` weights, and of a [rows, cols] matrix.
uint64_t weight_row_bytes(WeightType t, int64_t cols);
uint64_t weight_matrix_bytes(WeightType t, int64_t rows, int64_t cols);
// Bits per weight, as a user compares formats (q8: 8.5, q4: 5).
double weight_bits_per_weight(WeightType t);

// One row of fp32 weights into the stored layout (round to nearest; f32 is a copy).
void weight_quantize_row(WeightType t, const float* src, int64_t cols, uint8_t* dst);
// One stored row back to fp32: exactly the values the kernels compute with.
void weight_dequantize_row(WeightType t, const uint8_t* src, int64_t cols, float* dst);

// The layout as one line, for safetensors metadata and `chronos inspect`.
std::string weight_type_layout(WeightType t);

}  // namespace chronos
