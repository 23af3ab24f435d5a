// whale's block-quantized weight formats, q8 and q4, as stored in a quantized checkpoint and read in place by the
// matmul kernels (no repacking at load).
//
// Both quantize a Linear weight W [rows, cols] in blocks of kQuantBlock = 32 consecutive values of one row, each block
// with one f16 scale s: w ≈ s · q. Rows are grouped in sixteens (kQuantRowGroup), and the sixteen rows' blocks of the
// same 32 columns form one "group block", laid out for integer dot-product instructions (x86 VNNI vpdpbusd, Arm
// sdot/udot): four consecutive columns of one row are four consecutive bytes, and a 64-byte line holds those four
// columns for all sixteen rows. A kernel multiplies one line by four activation bytes broadcast to every lane and
// accumulates sixteen rows at once. rows are padded with zeros (the zero code) up to a multiple of 16, cols up to a
// multiple of 64 (two blocks).
//
// Two group blocks of a group (blocks 2j and 2j + 1) and then their 32 scales form a "superblock": the scales travel
// in the stream of codes, one 64-byte line after every two group blocks, instead of in an array of their own. A decode
// tile reading four row groups side by side then streams four runs of memory, not eight; on the Zen 5 VM a scratch
// loop in the q4 tile's pattern read 1.11-1.19x as many bytes per second this way as with the scales apart (session
// 43, docs/performance.md).
//
// Tensor `NAME.weight`, dtype U8, shape [padded_rows/16, padded_cols/64, 2·16·B + 64], B bytes per row-block (a group
// block of 16·B bytes: q8 512, q4 256; a superblock of q8 1088, q4 576 bytes):
//   q8: B = 32. Code q + 128, q = round(w / s) in [-127, 127]. Column c (0..31 within the block) of row i (0..15
//       within the group) is byte ((c / 4)·16 + i)·4 + c % 4 of the group block: 8 lines of 64 bytes.
//       (Biased to unsigned so that vpdpbusd, u8 × s8, takes the weights as they are: Σ (q + 128)·x − 128 Σ x.)
//   q4: B = 16. Code q + 8, q = round(w / s) clamped to [-8, 7]. Columns c < 16 are low nibbles, c ≥ 16 high nibbles
//       of the byte that holds column c − 16: byte (((c % 16) / 4)·16 + i)·4 + c % 4. 4 lines of 64 bytes.
//   scales: the superblock's last 64 bytes, f16 little-endian: s of row i in block 2j + h at f16 index h·16 + i.
//
// Scales: q8 s = absmax / 127; q4 s = absmax / 8 when only a negative value reaches absmax (it becomes code -8),
// otherwise absmax / 7 (s is never negative). s is rounded to f16 first and the codes are computed with the rounded
// s (round half to even) and clamped to the code range, so the f16 rounding is part of the quantization error, not
// added on top. A zero scale (an all-zero block) gives zero codes.
//
// config.json of a quantized checkpoint: "quantization_config": {"quant_method": "whale", "format": "q8" | "q4",
// "group_size": 32, "row_interleave": 16, "scales": "inline"}. Every Linear weight is quantized except the MoE router
// (mlp.gate.weight), which stays as it was; norms and biases are never quantized. The unpadded shape comes from
// config.json. See docs/quantization.md.
#pragma once

#include <cstdint>

namespace whale {

inline constexpr int kQuantBlock = 32;
inline constexpr int kQuantRowGroup = 16;

enum class QuantType : uint8_t { Q8, Q4 };

// Bytes of one row's block of kQuantBlock values, and of a group block (16 rows × one block).
constexpr int quant_block_bytes(QuantType t) { return t == QuantType::Q8 ? 32 : 16; }
constexpr int quant_group_block_bytes(QuantType t) { return kQuantRowGroup * quant_block_bytes(t); }

// Blocks per superblock, and a superblock's bytes: its group blocks, then one line of their f16 scales.
inline constexpr int kQuantSuperBlocks = 2;
inline constexpr int kQuantScaleLineBytes = kQuantSuperBlocks * kQuantRowGroup * 2;
constexpr int quant_superblock_bytes(QuantType t) {
  return kQuantSuperBlocks * quant_group_block_bytes(t) + kQuantScaleLineBytes;
}

constexpr int64_t quant_padded_rows(int64_t rows) { return (rows + kQuantRowGroup - 1) / kQuantRowGroup * kQuantRowGroup; }
constexpr int64_t quant_padded_cols(int64_t cols) {
  constexpr int64_t m = kQuantSuperBlocks * kQuantBlock;
  return (cols + m - 1) / m * m;
}

// Bytes of one row group (16 rows × padded_cols), superblock after superblock.
constexpr int64_t quant_group_bytes(QuantType t, int64_t padded_cols) {
  return padded_cols / (kQuantSuperBlocks * kQuantBlock) * quant_superblock_bytes(t);
}

// Where a superblock's codes and its scale line start (the scales after the codes; the other way round measured
// level, q8 and q4, session 43).
inline constexpr int kQuantCodesAt = 0;
constexpr int kQuantScalesAt(QuantType t) { return kQuantSuperBlocks * quant_group_block_bytes(t); }

// Byte offset, within its row group, of block kb's group block, and of block kb's 16 scales.
constexpr int64_t quant_block_in_group(QuantType t, int64_t kb) {
  return kb / kQuantSuperBlocks * quant_superblock_bytes(t) + kQuantCodesAt +
         kb % kQuantSuperBlocks * quant_group_block_bytes(t);
}
constexpr int64_t quant_scales_in_group(QuantType t, int64_t kb) {
  return kb / kQuantSuperBlocks * quant_superblock_bytes(t) + kQuantScalesAt(t) +
         kb % kQuantSuperBlocks * kQuantRowGroup * 2;
}

// Byte offset of the group block holding row r's block kb.
constexpr int64_t quant_group_block_offset(QuantType t, int64_t padded_cols, int64_t r, int64_t kb) {
  return r / kQuantRowGroup * quant_group_bytes(t, padded_cols) + quant_block_in_group(t, kb);
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

// Byte offset in `.weight` of row r's block kb scale (2 bytes, f16 little-endian).
constexpr int64_t quant_scale_offset(QuantType t, int64_t padded_cols, int64_t r, int64_t kb) {
  return r / kQuantRowGroup * quant_group_bytes(t, padded_cols) + quant_scales_in_group(t, kb) + r % kQuantRowGroup * 2;
}

}  // namespace whale
