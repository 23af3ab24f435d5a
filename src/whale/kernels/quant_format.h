// whale's block-quantized weight formats, q8 and q4, as stored in a quantized checkpoint and read in place by the
// matmul kernels (no repacking at load).
//
// Both quantize a Linear weight W [rows, cols] in blocks of kQuantBlock = 32 consecutive values of one row, each block
// with one f16 scale s: w ≈ s · q. Rows are grouped in sixteens (kQuantRowGroup), and the sixteen rows' blocks of the
// same 32 columns form one "group block", laid out for integer dot-product instructions (x86 VNNI vpdpbusd, Arm
// sdot/udot): four consecutive columns of one row are four consecutive bytes, and a 64-byte line holds those four
// columns for all sixteen rows. A kernel multiplies one line by four activation bytes broadcast to every lane and
// accumulates sixteen rows at once. rows and cols are padded with zeros (the zero code) up to multiples of 16 and 32.
//
// Tensor `NAME.weight`, dtype U8, shape [padded_rows/16, padded_cols/32, 16·B], B bytes per row-block (a group
// block of 16·B bytes: q8 512, q4 256):
//   q8: B = 32. Code q + 128, q = round(w / s) in [-127, 127]. Column c (0..31 within the block) of row i (0..15
//       within the group) is byte ((c / 4)·16 + i)·4 + c % 4 of the group block: 8 lines of 64 bytes.
//       (Biased to unsigned so that vpdpbusd, u8 × s8, takes the weights as they are: Σ (q + 128)·x − 128 Σ x.)
//   q4: B = 16. Code q + 8, q = round(w / s) clamped to [-8, 7]. Columns c < 16 are low nibbles, c ≥ 16 high nibbles
//       of the byte that holds column c − 16: byte (((c % 16) / 4)·16 + i)·4 + c % 4. 4 lines of 64 bytes.
// Tensor `NAME.weight_scale`, dtype F16, shape [padded_rows/16, padded_cols/32, 16]: s of row i in block kb of
// group g at index (g·blocks + kb)·16 + i.
//
// Scales: q8 s = absmax / 127; q4 s = absmax / 8 when only a negative value reaches absmax (it becomes code -8),
// otherwise absmax / 7 (s is never negative). s is rounded to f16 first and the codes are computed with the rounded
// s (round half to even) and clamped to the code range, so the f16 rounding is part of the quantization error, not
// added on top. A zero scale (an all-zero block) gives zero codes.
//
// config.json of a quantized checkpoint: "quantization_config": {"quant_method": "whale", "format": "q8" | "q4",
// "group_size": 32, "row_interleave": 16}. Every Linear weight is quantized except the MoE router (mlp.gate.weight),
// which stays as it was; norms and biases are never quantized. The unpadded shape comes from config.json. See
// docs/quantization.md.
#pragma once

#include <cstdint>

namespace whale {

inline constexpr int kQuantBlock = 32;
inline constexpr int kQuantRowGroup = 16;

enum class QuantType : uint8_t { Q8, Q4 };

// Bytes of one row's block of kQuantBlock values, and of a group block (16 rows × one block).
constexpr int quant_block_bytes(QuantType t) { return t == QuantType::Q8 ? 32 : 16; }
constexpr int quant_group_block_bytes(QuantType t) { return kQuantRowGroup * quant_block_bytes(t); }

constexpr int64_t quant_padded_rows(int64_t rows) { return (rows + kQuantRowGroup - 1) / kQuantRowGroup * kQuantRowGroup; }
constexpr int64_t quant_padded_cols(int64_t cols) { return (cols + kQuantBlock - 1) / kQuantBlock * kQuantBlock; }

// Byte offset of the group block holding row r's block kb.
constexpr int64_t quant_group_block_offset(QuantType t, int64_t padded_cols, int64_t r, int64_t kb) {
  return (r / kQuantRowGroup * (padded_cols / kQuantBlock) + kb) * quant_group_block_bytes(t);
}

// Where W[r, c]'s code lives: its byte's offset in `.weight`, and for q4 whether it is the high nibble.
struct QuantCodePosition {
  int64_t byte;
  bool high_nibble;
};
constexpr QuantCodePosition quant_code_position(QuantType t, int64_t padded_cols, int64_t r, int64_t c) {
  const int64_t i = r % kQuantRowGroup, j = c % kQuantBlock;
  const int64_t base = quant_group_block_offset(t, padded_cols, r, c / kQuantBlock);
  if (t == QuantType::Q8) return {base + ((j / 4) * kQuantRowGroup + i) * 4 + j % 4, false};
  const int64_t jj = j % 16;
  return {base + ((jj / 4) * kQuantRowGroup + i) * 4 + jj % 4, j >= 16};
}

// Index of row r's block kb scale in `.weight_scale`.
constexpr int64_t quant_scale_index(int64_t padded_cols, int64_t r, int64_t kb) {
  return (r / kQuantRowGroup * (padded_cols / kQuantBlock) + kb) * kQuantRowGroup + r % kQuantRowGroup;
}

}  // namespace whale
