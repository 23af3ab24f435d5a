// whale's block-quantized weight formats, q8 and q4, as stored in a quantized checkpoint and read in place by the
// matmul kernels (no repacking at load).
//
// Both quantize a Linear weight W [rows, cols] in blocks of kQuantBlock = 32 consecutive values of one row, each block
// with one f16 scale s: w ≈ s · q. Rows are grouped in fours (kQuantRowGroup) and the four rows' blocks of the same
// columns are stored next to each other, so a kernel that computes four outputs streams one contiguous array.
// rows and cols are padded with zeros up to multiples of 4 and 32 (padded_rows, padded_cols).
//
// Tensor `NAME.weight`, dtype U8, shape [padded_rows/4, padded_cols/32, 4, B], B bytes per row-block:
//   q8: B = 32. Byte j of row r's block holds q_j + 128, with q_j = round(w_j / s) clamped to [-127, 127]. (Biased to
//       unsigned so that a u8 × s8 dot product instruction (VNNI vpdpbusd) takes the weights as they are:
//       Σ q·x = Σ (q + 128)·x − 128 Σ x.)
//   q4: B = 16. Byte j (0..15) holds q_j + 8 in its low nibble and q_{j+16} + 8 in its high nibble, with
//       q = round(w / s) clamped to [-8, 7].
// Tensor `NAME.weight_scale`, dtype F16, shape [padded_rows/4, padded_cols/32, 4]: s for each (row, block).
//
// Scales: q8 s = absmax / 127; q4 s = absmax / 8 when only a negative value reaches absmax (it becomes code -8),
// otherwise absmax / 7 (s is never negative). s is rounded to f16 first and the codes are computed with the rounded
// s (round half to even) and clamped to the code range, so the f16 rounding is part of the quantization error, not
// added on top. A zero scale (an all-zero block) gives zero codes.
//
// config.json of a quantized checkpoint: "quantization_config": {"quant_method": "whale", "format": "q8" | "q4",
// "group_size": 32, "row_interleave": 4}. Every Linear weight is quantized except the MoE router (mlp.gate.weight),
// which stays as it was; norms and biases are never quantized. The unpadded shape comes from config.json. See
// docs/quantization.md.
#pragma once

#include <cstdint>

namespace whale {

inline constexpr int kQuantBlock = 32;
inline constexpr int kQuantRowGroup = 4;

enum class QuantType : uint8_t { Q8, Q4 };

// Bytes of one row's block of kQuantBlock values.
constexpr int quant_block_bytes(QuantType t) { return t == QuantType::Q8 ? 32 : 16; }

constexpr int64_t quant_padded_rows(int64_t rows) { return (rows + kQuantRowGroup - 1) / kQuantRowGroup * kQuantRowGroup; }
constexpr int64_t quant_padded_cols(int64_t cols) { return (cols + kQuantBlock - 1) / kQuantBlock * kQuantBlock; }

// Byte offset of row r's block kb in the `.weight` tensor, and index of its scale in `.weight_scale`.
constexpr int64_t quant_block_offset(QuantType t, int64_t padded_cols, int64_t r, int64_t kb) {
  const int64_t blocks = padded_cols / kQuantBlock;
  return ((r / kQuantRowGroup * blocks + kb) * kQuantRowGroup + r % kQuantRowGroup) * quant_block_bytes(t);
}
constexpr int64_t quant_scale_index(int64_t padded_cols, int64_t r, int64_t kb) {
  const int64_t blocks = padded_cols / kQuantBlock;
  return (r / kQuantRowGroup * blocks + kb) * kQuantRowGroup + r % kQuantRowGroup;
}

}  // namespace whale
