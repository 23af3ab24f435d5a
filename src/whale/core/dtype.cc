#include "whale/core/dtype.h"

#include <array>
#include <cmath>
#include <limits>
#include <utility>

namespace whale {
namespace {

constexpr std::array<std::pair<DType, std::string_view>, 15> kNames = {{
    {DType::BOOL, "BOOL"}, {DType::U8, "U8"},     {DType::I8, "I8"},     {DType::I16, "I16"},
    {DType::U16, "U16"},   {DType::I32, "I32"},   {DType::U32, "U32"},   {DType::I64, "I64"},
    {DType::U64, "U64"},   {DType::F16, "F16"},   {DType::BF16, "BF16"}, {DType::F32, "F32"},
    {DType::F64, "F64"},   {DType::F8_E4M3, "F8_E4M3"}, {DType::F8_E5M2, "F8_E5M2"},
}};

}  // namespace

std::string_view dtype_name(DType t) {
  if (t == DType::Q8) return "whale q8";
  if (t == DType::Q4) return "whale q4";
  for (const auto& [dt, name] : kNames)
    if (dt == t) return name;
  return "?";
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& [dt, n] : kNames)
    if (n == name) return dt;
  return std::nullopt;
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::BOOL: case DType::U8: case DType::I8: case DType::F8_E4M3: case DType::F8_E5M2: return 1;
    case DType::I16: case DType::U16: case DType::F16: case DType::BF16: return 2;
    case DType::I32: case DType::U32: case DType::F32: return 4;
    case DType::I64: case DType::U64: case DType::F64: return 8;
    case DType::Q8: case DType::Q4: return 0;  // block formats: see kernels/quant_format.h
  }
  return 0;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  const uint32_t mant = h & 0x3FF;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24, exact in f32.
    const float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  if (exp == 31) return bits_to_f32(sign | 0x7F800000u | (mant << 13));
  return bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t f32_to_f16(float f) {
  const uint32_t x = f32_to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00 | ((ax >> 13) & 0x3FF));  // NaN
  if (ax >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00);  // >= 65520 (or inf): infinity
  if (ax >= 0x38800000u) {
    // Normal f16 (>= 2^-14): rebias the exponent (127 -> 15), then round the 13 dropped mantissa bits to nearest
    // even; a carry out of the mantissa correctly moves to the next binade.
    const uint32_t h = ax - 0x38000000u;
    return static_cast<uint16_t>(sign | ((h + 0xFFFu + ((h >> 13) & 1u)) >> 13));
  }
  // Subnormal f16 (or zero): the value in units of 2^-24, m · 2^(e - 126) with m the 24-bit significand.
  const uint32_t e = ax >> 23;
  if (e < 102) return sign;  // below 2^-25: rounds to zero (2^-25 itself is a tie, handled below)
  const uint64_t m = (ax & 0x7FFFFFu) | 0x800000u;
  const uint32_t shift = 126 - e;  // 14..24
  uint64_t q = m >> shift;
  const uint64_t rem = m & ((uint64_t{1} << shift) - 1), half = uint64_t{1} << (shift - 1);
  if (rem > half || (rem == half && (q & 1))) ++q;  // q may reach 0x400, the smallest normal: still correct
  return static_cast<uint16_t>(sign | q);
}

float e4m3_to_f32(uint8_t v) {
  const bool negative = v & 0x80;
  const int exp = (v >> 3) & 0xF;
  const int mant = v & 0x7;
  float magnitude;
  if (exp == 0xF && mant == 0x7) {
    magnitude = std::numeric_limits<float>::quiet_NaN();
  } else if (exp == 0) {
    magnitude = std::ldexp(static_cast<float>(mant) / 8.0f, -6);
  } else {
    magnitude = std::ldexp(1.0f + static_cast<float>(mant) / 8.0f, exp - 7);
  }
  return negative ? -magnitude : magnitude;
}

float load_as_f32(DType t, const uint8_t* p, size_t i) {
  switch (t) {
    case DType::F32: return load_f32(p, i);
    case DType::BF16: return bf16_to_f32(load_u16(p, i));
    case DType::F16: return f16_to_f32(load_u16(p, i));
    case DType::F8_E4M3: return e4m3_to_f32(p[i]);
    default: return std::numeric_limits<float>::quiet_NaN();
  }
}

}  // namespace whale
