// Scalar reference quantizer and dequantizer of whale's q8 / q4 block formats (kernels/quant_format.h). These define
// the bytes: `whale quantize` writes them, scripts/reference/quantize_ref.py reproduces them bit for bit, and the
// SIMD matmul kernels must agree with dequantize_row.
//
// Arithmetic, in f32 and in this order, for one block of 32 values w (a row's padding columns count as 0):
//   absmax = max |w_j|, wmax = max w_j
//   q8: s = f16(absmax / 127)
//   q4: s = f16(absmax / 7) if wmax == absmax (the largest magnitude is reached by a non-negative value, ties to
//       the positive side), else f16(absmax / 8) (only a negative value reaches it; it becomes code -8).
//       s is never negative.
//   f16(): f32 -> binary16, round to nearest, ties to even (f32_to_f16).
//   q_j = rint(w_j / f16_to_f32(s)): IEEE f32 division, then ROUND TO NEAREST, TIES TO EVEN; clamped to
//       [-127, 127] (q8) or [-8, 7] (q4). The clamp acts in q4 blocks scaled by a negative extreme (values in
//       (7.5 s, 8 s) give 7) and where s is an f16 subnormal (too few bits to reach absmax / 127 closely); the f16
//       rounding of a normal s alone never needs it (|w / s| <= 127.07 resp. 8.004).
//   s == 0 (all-zero block, or absmax below ~3.8e-6 for q8, where the scale underflows f16): every q_j = 0.
// A non-finite value, or a block whose scale rounds to f16 infinity (absmax >= 65520 · 127 for q8), is an error.
// Dequantized values s · q are exact in f32 (11 + 8 significant bits).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "whale/core/dtype.h"
#include "whale/kernels/quant_format.h"
#include "whale/kernels/weight.h"

namespace whale {

inline DType quant_dtype(QuantType t) { return t == QuantType::Q8 ? DType::Q8 : DType::Q4; }
inline std::optional<QuantType> quant_type_of(DType d) {
  if (d == DType::Q8) return QuantType::Q8;
  if (d == DType::Q4) return QuantType::Q4;
  return std::nullopt;
}
// "q8" / "q4", as in config.json's quantization_config.format and `whale quantize --type`.
const char* quant_type_name(QuantType t);
std::optional<QuantType> quant_type_from_name(std::string_view name);

// Shape and size of the tensor of a quantized [rows, cols] weight: U8 [pr/16, pc/64, superblock bytes].
std::vector<int64_t> quant_data_shape(QuantType t, int64_t rows, int64_t cols);
int64_t quant_data_bytes(QuantType t, int64_t rows, int64_t cols);

// Quantizes one block of kQuantBlock values to signed codes q (w ≈ s · q); returns the f16 scale's bits. q8: s =
// max|w|/127. q4: the scale of least squared error among multiples of max|w|/7 (/8 when the extreme is negative).
// Throws Error for a non-finite value or a scale beyond f16's range.
uint16_t quantize_block(QuantType t, const float* w, int8_t* q);

// q4 block scales tried, as f32 multiples of the default scale, in this order (the same list as SCALE_FACTORS in
// scripts/reference/quantize_ref.py).
inline constexpr float kQ4ScaleFactors[] = {1.0f,   0.975f, 0.95f,  0.925f, 0.9f,  0.875f, 0.85f,
                                            0.825f, 0.8f,   0.775f, 0.75f,  0.725f, 0.7f,   1.025f,
                                            1.05f,  1.075f, 1.1f,   1.125f, 1.15f};

// quantize_block(Q4, ·) on n blocks stored one after another (block b: w + 32·b to codes q + 32·b and scales[b]),
// one block per SIMD lane on the best instruction set the CPU has, bit for bit the same. Stops at the first block
// that quantize_block rejects and returns its index (the blocks before it written); otherwise returns n.
int64_t quantize_blocks_q4(const float* w, int64_t n, int8_t* q, uint16_t* scales);
// The scalar reference of quantize_blocks_q4: quantize_block on one block after another.
int64_t quantize_blocks_q4_scalar(const float* w, int64_t n, int8_t* q, uint16_t* scales);

// Quantizes one group of kQuantRowGroup rows. Row i < n_rows starts at w + i·ld and has `cols` values; rows
// n_rows..15 and columns cols..padded_cols are zero padding. Writes the group's quant_group_bytes: its superblocks,
// codes and scales where quant_code_position and quant_scale_offset say, relative to the group. `first_row` (the
// group's row index in the matrix) only names the row in error messages.
void quantize_row_group(QuantType t, const float* w, int64_t ld, int n_rows, int64_t cols, uint8_t* data,
                        int64_t first_row = 0);

// Quantizes a row-major f32 matrix [rows, cols] into data (quant_data_bytes).
void quantize_matrix(QuantType t, const float* w, int64_t rows, int64_t cols, uint8_t* data);

// Sets every block scale (padding rows and blocks included) of a quantized [rows, cols] weight's bytes to the f16
// `bits`, leaving the codes: for synthetic weights in benchmarks.
void set_quant_scales(QuantType t, int64_t rows, int64_t cols, uint8_t* data, uint16_t bits);

// The f16 bits of row r's block kb scale in a Q8 / Q4 weight.
uint16_t quant_scale_bits(const Weight2D& w, int64_t r, int64_t kb);

// Row r of a Q8 / Q4 weight as its w.cols logical values (padding dropped), out[c] = s · q.
void dequantize_row(const Weight2D& w, int64_t r, float* out);

}  // namespace whale
