// weight_type.cpp: see weight_type.h.
#include "format/weight_type.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "format/dtype.h"

namespace chronos {

namespace {

struct Row {
    WeightType type;
    const char* name;
};
constexpr Row kTypes[] = {{WeightType::f32, "f32"}, {WeightType::bf16, "bf16"}, {WeightType::f16, "f16"},
                          {WeightType::q8, "q8"},   {WeightType::q4, "q4"}};

int64_t blocks_of(int64_t cols) { return (cols + kQuantBlock - 1) / kQuantBlock; }

void put_f16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
uint16_t get_f16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

// One block of n <= 32 weights (the rest of the 32 are zero): its scale into *d, its quants
// into q[32].
void quantize_q8(const float* x, int64_t n, uint8_t* d_out, int8_t* q) {
    float amax = 0;
    for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
    const uint16_t dbits = f32_to_f16(amax / 127.0f);
    const float d = f16_to_f32(dbits);
    put_f16(d_out, dbits);
    for (int64_t i = 0; i < kQuantBlock; ++i) {
        if (i >= n || d == 0.0f) {
            q[i] = 0;
            continue;
        }
        const float v = std::nearbyint(x[i] / d);
        q[i] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
    }
}

// Scale into *d_out, minimum into *m_out, the 16 nibble pairs into nib[16].
void quantize_q4(const float* x, int64_t n, uint8_t* d_out, uint8_t* m_out, uint8_t* nib) {
    float lo = x[0], hi = x[0];
    for (int64_t i = 1; i < n; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
    }
    const uint16_t mbits = f32_to_f16(lo);
    const float m = f16_to_f32(mbits);
    // The scale spans [m, hi] even after m's rounding (m may have rounded up past lo: q then
    // clamps at 0, an error of at most m's rounding).
    const uint16_t dbits = f32_to_f16((hi - m) / 15.0f);
    const float d = f16_to_f32(dbits);
    put_f16(d_out, dbits);
    put_f16(m_out, mbits);
    uint8_t q[kQuantBlock] = {};
    for (int64_t i = 0; i < n; ++i) {
        const float v = d > 0.0f ? std::nearbyint((x[i] - m) / d) : 0.0f;
        q[i] = static_cast<uint8_t>(std::clamp(v, 0.0f, 15.0f));
    }
    for (int64_t j = 0; j < 16; ++j) nib[j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
}

}  // namespace

const char* weight_type_name(WeightType t) { return kTypes[static_cast<size_t>(t)].name; }

std::optional<WeightType> weight_type_parse(std::string_view name) {
    for (const Row& r : kTypes) {
        if (name == r.name) return r.type;
    }
    return std::nullopt;
}

bool weight_type_is_block(WeightType t) { return t == WeightType::q8 || t == WeightType::q4; }

uint64_t weight_row_bytes(WeightType t, int64_t cols) {
    const auto c = static_cast<uint64_t>(cols);
    switch (t) {
        case WeightType::f32: return 4 * c;
        case WeightType::bf16:
        case WeightType::f16: return 2 * c;
        case WeightType::q8: return static_cast<uint64_t>(blocks_of(cols)) * kQ8BlockBytes;
        case WeightType::q4: return static_cast<uint64_t>(blocks_of(cols)) * kQ4BlockBytes;
    }
    return 0;
}

uint64_t weight_matrix_bytes(WeightType t, int64_t rows, int64_t cols) { return static_cast<uint64_t>(rows) * weight_row_bytes(t, cols); }

double weight_bits_per_weight(WeightType t) {
    switch (t) {
        case WeightType::f32: return 32;
        case WeightType::bf16:
        case WeightType::f16: return 16;
        case WeightType::q8: return 8.0 * kQ8BlockBytes / kQuantBlock;
        case WeightType::q4: return 8.0 * kQ4BlockBytes / kQuantBlock;
    }
    return 0;
}

void weight_quantize_row(WeightType t, const float* src, int64_t cols, uint8_t* dst) {
    switch (t) {
        case WeightType::f32: std::memcpy(dst, src, static_cast<size_t>(cols) * 4); return;
        case WeightType::bf16:
            for (int64_t i = 0; i < cols; ++i) put_f16(dst + 2 * i, f32_to_bf16(src[i]));
            return;
        case WeightType::f16:
            for (int64_t i = 0; i < cols; ++i) put_f16(dst + 2 * i, f32_to_f16(src[i]));
            return;
        case WeightType::q8:
        case WeightType::q4: {
            const int64_t nb = blocks_of(cols);
            for (int64_t b = 0; b < nb; ++b) {
                const int64_t n = std::min(kQuantBlock, cols - b * kQuantBlock);
                if (t == WeightType::q8) {
                    quantize_q8(src + b * kQuantBlock, n, dst + 2 * b, reinterpret_cast<int8_t*>(dst + 2 * nb + kQuantBlock * b));
                } else {
                    quantize_q4(src + b * kQuantBlock, n, dst + 2 * b, dst + 2 * nb + 2 * b, dst + 4 * nb + 16 * b);
                }
            }
            return;
        }
    }
}

void weight_dequantize_row(WeightType t, const uint8_t* src, int64_t cols, float* dst) {
    switch (t) {
        case WeightType::f32: std::memcpy(dst, src, static_cast<size_t>(cols) * 4); return;
        case WeightType::bf16:
            for (int64_t i = 0; i < cols; ++i) dst[i] = bf16_to_f32(get_f16(src + 2 * i));
            return;
        case WeightType::f16:
            for (int64_t i = 0; i < cols; ++i) dst[i] = f16_to_f32(get_f16(src + 2 * i));
            return;
        case WeightType::q8: {
            const int64_t nb = blocks_of(cols);
            const auto* q = reinterpret_cast<const int8_t*>(src + 2 * nb);
            for (int64_t b = 0; b < nb; ++b) {
                const float d = f16_to_f32(get_f16(src + 2 * b));
                const int64_t n = std::min(kQuantBlock, cols - b * kQuantBlock);
                float* out = dst + b * kQuantBlock;
                for (int64_t j = 0; j < n; ++j) out[j] = d * static_cast<float>(q[b * kQuantBlock + j]);
            }
            return;
        }
        case WeightType::q4: {
            const int64_t nb = blocks_of(cols);
            for (int64_t b = 0; b < nb; ++b) {
                const float d = f16_to_f32(get_f16(src + 2 * b)), m = f16_to_f32(get_f16(src + 2 * nb + 2 * b));
                const uint8_t* nib = src + 4 * nb + 16 * b;
                const int64_t n = std::min(kQuantBlock, cols - b * kQuantBlock);
                float* out = dst + b * kQuantBlock;
                for (int64_t j = 0; j < n; ++j) {
                    const int q = j < 16 ? (nib[j] & 15) : (nib[j - 16] >> 4);
                    out[j] = d * static_cast<float>(q) + m;
                }
            }
            return;
        }
    }
}

std::string weight_type_layout(WeightType t) {
    switch (t) {
        case WeightType::f32: return "f32: rows of little-endian IEEE binary32";
        case WeightType::bf16: return "bf16: rows of little-endian bfloat16";
        case WeightType::f16: return "f16: rows of little-endian IEEE binary16";
        case WeightType::q8:
            return "q8: nb = ceil(cols/32) blocks per row, row = {f16 d[nb]; int8 q[nb][32]}, w = d[b]*q[b][i], last block zero-padded";
        case WeightType::q4:
            return "q4: nb = ceil(cols/32) blocks per row, row = {f16 d[nb]; f16 m[nb]; uint8 n[nb][16]}, q[b][j] = n[b][j] & 15, "
                   "q[b][j+16] = n[b][j] >> 4, w = d[b]*q[b][i] + m[b], last block zero-padded";
    }
    return "";
}

}  // namespace chronos
