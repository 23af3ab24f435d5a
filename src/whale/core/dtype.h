// Element types of checkpoint tensors and their scalar conversions to f32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace whale {

// The safetensors dtype set (huggingface/safetensors Dtype), then whale's block-quantized weight formats Q8 and Q4
// (kernels/quant_format.h), which are stored as U8 tensors and never appear in a safetensors header.
// Model code accepts only some of them.
enum class DType : uint8_t { BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F16, BF16, F32, F64, F8_E4M3, F8_E5M2, Q8, Q4 };

std::string_view dtype_name(DType t);
std::optional<DType> dtype_from_name(std::string_view name);
size_t dtype_size(DType t);

inline float bits_to_f32(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline uint32_t f32_to_bits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

inline float bf16_to_f32(uint16_t h) { return bits_to_f32(static_cast<uint32_t>(h) << 16); }

// f32 to bf16, round to nearest, ties to even; NaN stays NaN (quiet), infinities stay infinite.
inline uint16_t f32_to_bf16(float f) {
  const uint32_t b = f32_to_bits(f);
  if ((b & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>(b >> 16 | 0x40);
  return static_cast<uint16_t>((b + 0x7FFFu + (b >> 16 & 1u)) >> 16);
}

// IEEE binary16 to f32, exact for every value including subnormals, inf and NaN.
float f16_to_f32(uint16_t h);

// f32 to IEEE binary16, round to nearest, ties to even: subnormal results rounded correctly, magnitudes from 65520
// (halfway between 65504, the largest finite f16, and 2^16) become infinity, NaN stays NaN (quiet, sign kept).
uint16_t f32_to_f16(float f);

// float8_e4m3fn to f32: bias 7, no infinities, 0x7F/0xFF are NaN, max finite 448 (deepseek-spec §3.3).
float e4m3_to_f32(uint8_t v);

// Loads element i of a little-endian array whose start may be unaligned (safetensors data need not be).
inline uint16_t load_u16(const uint8_t* p, size_t i) {
  uint16_t v;
  std::memcpy(&v, p + 2 * i, 2);
  return v;
}
inline float load_f32(const uint8_t* p, size_t i) {
  float v;
  std::memcpy(&v, p + 4 * i, 4);
  return v;
}

// Element i of a BF16, F16, F32 or F8_E4M3 array as f32 (no block scale applied).
float load_as_f32(DType t, const uint8_t* p, size_t i);

}  // namespace whale
