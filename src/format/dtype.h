// dtype.h: the element types a safetensors file may hold, with their names in the format
// ("F32", "BF16", ...) and sizes in bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chronos {

enum class DType : uint8_t {
    BOOL, U8, I8, U16, I16, F16, BF16, U32, I32, F32, U64, I64, F64, F8_E4M3, F8_E5M2,
};

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);             // the safetensors spelling, e.g. "BF16"
std::optional<DType> dtype_parse(std::string_view name);  // nullopt if unknown

// Conversions used for stored experts (round to nearest even, NaN kept NaN).
uint16_t f32_to_bf16(float value);
float bf16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float value);
float f16_to_f32(uint16_t bits);

}  // namespace chronos
