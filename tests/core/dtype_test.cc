#include "whale/core/dtype.h"

#include <cmath>

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
