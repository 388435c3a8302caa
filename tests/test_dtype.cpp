// test_dtype.cpp: fp16/bf16 conversions against exhaustive and reference checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "format/dtype.h"

using namespace chronos;

TEST(DType, NamesAndSizesRoundTrip) {
    for (const char* name : {"BOOL", "U8", "I8", "U16", "I16", "F16", "BF16", "U32", "I32", "F32", "U64", "I64", "F64", "F8_E4M3", "F8_E5M2"}) {
        auto d = dtype_parse(name);
        ASSERT_TRUE(d.has_value()) << name;
        EXPECT_STREQ(dtype_name(*d), name);
    }
    EXPECT_EQ(dtype_size(DType::BF16), 2u);
    EXPECT_EQ(dtype_size(DType::F64), 8u);
    EXPECT_FALSE(dtype_parse("f32").has_value());
}

TEST(DType, EveryF16ValueSurvivesF32RoundTrip) {
    for (uint32_t bits = 0; bits < 65536; ++bits) {
        auto h = static_cast<uint16_t>(bits);
        float f = f16_to_f32(h);
        if (std::isnan(f)) {
            EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
            continue;
        }
        ASSERT_EQ(f32_to_f16(f), h) << "f16 bits " << bits << " value " << f;
    }
}

TEST(DType, F16RoundsToNearestEven) {
    // Reference: the nearest of the two neighbouring f16 values, ties to the even mantissa.
    std::mt19937 rng(3);
    for (int i = 0; i < 200000; ++i) {
        uint32_t u = rng();
        float f;
        std::memcpy(&f, &u, 4);
        if (!std::isfinite(f) || std::fabs(f) > 65504.0f) continue;
        uint16_t h = f32_to_f16(f);
        double got = f16_to_f32(h);
        // Neighbours of h.
        double up = f16_to_f32(static_cast<uint16_t>(h + 1));
        double down = (h & 0x7fff) ? f16_to_f32(static_cast<uint16_t>(h - 1)) : -got;
        double err = std::fabs(got - static_cast<double>(f));
        EXPECT_LE(err, std::fabs(up - static_cast<double>(f)) + 1e-30) << f;
        if ((h & 0x7fff) != 0) {
            EXPECT_LE(err, std::fabs(down - static_cast<double>(f)) + 1e-30) << f;
        }
    }
}

TEST(DType, Bf16IsTruncatedF32WithRounding) {
    EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
    // 1 + 2^-8 is exactly half-way between bf16 1.0 and 1.0078125: ties to even -> 1.0.
    EXPECT_EQ(f32_to_bf16(1.00390625f), 0x3f80);
    // Slightly above half-way rounds up.
    EXPECT_EQ(f32_to_bf16(1.0040f), 0x3f81);
    EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
    for (uint32_t bits = 0; bits < 65536; ++bits) {
        float f = bf16_to_f32(static_cast<uint16_t>(bits));
        if (!std::isnan(f)) {
            ASSERT_EQ(f32_to_bf16(f), bits);
        }
    }
}
