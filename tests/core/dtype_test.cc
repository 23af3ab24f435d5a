#include "whale/core/dtype.h"

#include <cmath>
#include <cstring>

#include <gtest/gtest.h>

namespace whale {
namespace {

// Values from the float8_e4m3fn definition (deepseek-spec §3.3): bias 7, 3 mantissa bits, no infinities.
TEST(DType, E4M3KnownValues) {
  EXPECT_EQ(e4m3_to_f32(0x00), 0.0f);
  EXPECT_TRUE(std::signbit(e4m3_to_f32(0x80)));
  EXPECT_EQ(e4m3_to_f32(0x38), 1.0f);
  EXPECT_EQ(e4m3_to_f32(0xB8), -1.0f);
  EXPECT_EQ(e4m3_to_f32(0x7E), 448.0f);
  EXPECT_EQ(e4m3_to_f32(0x01), 0.001953125f);  // smallest subnormal, 2^-9
  EXPECT_EQ(e4m3_to_f32(0x08), 0.015625f);     // smallest normal, 2^-6
  EXPECT_EQ(e4m3_to_f32(0x3C), 1.5f);
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0x7F)));
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0xFF)));
}

// All 256 codes against a decoder written differently: the value is an integer times a power of two.
TEST(DType, E4M3Exhaustive) {
  for (int code = 0; code < 256; ++code) {
    const int sign = code >> 7, exp = (code >> 3) & 15, mant = code & 7;
    if (exp == 15 && mant == 7) continue;
    const double integer = exp == 0 ? mant : 8 + mant;
    const int power = (exp == 0 ? 1 : exp) - 7 - 3;
    const double expected = (sign ? -1.0 : 1.0) * integer * std::pow(2.0, power);
    EXPECT_EQ(static_cast<double>(e4m3_to_f32(static_cast<uint8_t>(code))), expected) << "code " << code;
  }
}

TEST(DType, F16Exhaustive) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
    const float got = f16_to_f32(static_cast<uint16_t>(h));
    if (exp == 31) {
      EXPECT_TRUE(mant ? std::isnan(got) : std::isinf(got)) << h;
      continue;
    }
    const double integer = exp == 0 ? mant : 1024 + mant;
    const double expected = (sign ? -1.0 : 1.0) * integer * std::pow(2.0, (exp == 0 ? 1 : exp) - 15 - 10);
    EXPECT_EQ(static_cast<double>(got), expected) << h;
  }
}

TEST(DType, BF16IsTheHighHalfOfF32) {
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(bf16_to_f32(0x4049), 3.140625f);
}

TEST(DType, F32ToF16KnownValues) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xC000);
  EXPECT_EQ(f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65519.996f), 0x7BFF);  // just below the halfway point to 2^16
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);    // halfway, ties to even: infinity
  EXPECT_EQ(f32_to_f16(1e9f), 0x7C00);
  EXPECT_EQ(f32_to_f16(-INFINITY), 0xFC00);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::nanf("")))));
  EXPECT_EQ(f32_to_f16(0x1p-14f), 0x0400);        // smallest normal
  EXPECT_EQ(f32_to_f16(0x1p-24f), 0x0001);        // smallest subnormal
  EXPECT_EQ(f32_to_f16(0x1p-25f), 0x0000);        // halfway to it: ties to even (0)
  EXPECT_EQ(f32_to_f16(0x1.8p-25f), 0x0001);
  EXPECT_EQ(f32_to_f16(0x3p-25f), 0x0002);        // 1.5 ulp: tie, to even (2)
  EXPECT_EQ(f32_to_f16(0x5p-25f), 0x0002);        // 2.5 ulp: tie, to even (2)
  EXPECT_EQ(f32_to_f16(0x1p-26f), 0x0000);
  EXPECT_EQ(f32_to_f16(0x1.ffcp-15f), 0x0400);    // rounds up out of the subnormals
  EXPECT_EQ(f32_to_f16(1.0f + 0x1p-11f), 0x3C00);  // tie between 1 and 1 + 2^-10: even
  EXPECT_EQ(f32_to_f16(1.0f + 0x3p-11f), 0x3C02);  // tie between 1 + 2^-10 and 1 + 2^-9: even
  EXPECT_EQ(f32_to_f16(1.0f + 0x1.8p-11f), 0x3C01);
  EXPECT_EQ(f32_to_f16(2.0f - 0x1p-12f), 0x4000);  // carries into the next binade
}

// Every f16 value survives f16 -> f32 -> f16, and every f32 (a sample of all bit patterns) goes to a nearest f16,
// ties to the even one: checked with the exact decoder, in double.
TEST(DType, F32ToF16IsRoundToNearestEven) {
  for (uint32_t h = 0; h < 65536; ++h) {
    if (((h >> 10) & 31) == 31 && (h & 1023)) continue;  // NaN
    EXPECT_EQ(f32_to_f16(f16_to_f32(static_cast<uint16_t>(h))), h) << h;
  }
  for (uint64_t bits = 0; bits < (1ull << 32); bits += 9973) {
    const float f = bits_to_f32(static_cast<uint32_t>(bits));
    if (std::isnan(f)) continue;
    const uint16_t h = f32_to_f16(f);
    const double v = f;
    const double got = f16_to_f32(h);
    if (std::fabs(v) >= 65520.0) {
      EXPECT_TRUE(std::isinf(got) && std::signbit(got) == std::signbit(v)) << f;
      continue;
    }
    ASSERT_TRUE(std::isfinite(got)) << f;
    // Neighbours of h towards and away from zero.
    const uint16_t mag = h & 0x7FFF, sign = h & 0x8000;
    const double err = std::fabs(got - v);
    if (mag < 0x7BFF) {
      EXPECT_LE(err, std::fabs(f16_to_f32(static_cast<uint16_t>(sign | (mag + 1))) - v)) << f;
    }
    if (mag > 0) {
      const double down = std::fabs(f16_to_f32(static_cast<uint16_t>(sign | (mag - 1))) - v);
      EXPECT_LE(err, down) << f;
      if (err == down) {
        EXPECT_EQ(h & 1, 0) << "tie not to even: " << f;
      }
    }
#ifdef __FLT16_MAX__
    const _Float16 ref = static_cast<_Float16>(f);
    uint16_t ref_bits;
    std::memcpy(&ref_bits, &ref, 2);
    EXPECT_EQ(h, ref_bits) << f;
#endif
  }
}

TEST(DType, Names) {
  for (const char* name : {"F32", "BF16", "F16", "F8_E4M3", "I64", "U8"}) {
    const auto t = dtype_from_name(name);
    ASSERT_TRUE(t.has_value()) << name;
    EXPECT_EQ(dtype_name(*t), name);
  }
  EXPECT_FALSE(dtype_from_name("F4").has_value());
  EXPECT_EQ(dtype_size(DType::F8_E4M3), 1u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
}

}  // namespace
}  // namespace whale
