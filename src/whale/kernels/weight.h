// A 2-D weight matrix [rows, cols] in its stored dtype, read in place from the mapped checkpoint.
#pragma once

#include <cstdint>

#include "whale/core/dtype.h"

namespace whale {

struct Weight2D {
  DType dtype = DType::BF16;  // F32, F16, BF16, F8_E4M3, or whale's Q8 / Q4 (kernels/quant_format.h)
  int64_t rows = 0;
  int64_t cols = 0;
  const uint8_t* data = nullptr;  // row-major, possibly unaligned; Q8/Q4: superblocks of interleaved codes and their f16
                                  // scales (quant_format.h)
  // F8_E4M3 only: f32 multipliers, one per [block_rows x block_cols] block, row-major over
  // [ceil(rows/block_rows), ceil(cols/block_cols)]; edge blocks may be partial (deepseek-spec §3.3).
  const float* block_scale = nullptr;
  int block_rows = 128;
  int block_cols = 128;
  // BF16 only: products (of any number of tokens) may round the activations to bf16, as DeepSeek's reference model.py
  // computes and as the bf16 dot instruction needs (matmul_bf16_dot.h), instead of multiplying in f32. Set for the
  // whole model by its load options; ignored where the CPU lacks the instruction.
  bool bf16_activations = false;
};

// Bytes one full read of the weight touches: rows · cols · element size for F32 / BF16 / F16; for F8_E4M3 plus its
// f32 block scales (4 bytes per block); for Q8 / Q4 the padded superblocks (codes and f16 scales).
int64_t weight_bytes(const Weight2D& w);

}  // namespace whale
