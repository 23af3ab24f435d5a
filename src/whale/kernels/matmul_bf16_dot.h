// BF16 products with the activations rounded once to bf16 (as DeepSeek's reference model.py computes
// them, and as llama.cpp's BF16 dot does), on the AVX512-BF16 dot instruction (vdpbf16ps: 32 multiply-adds per
// instruction, against f32 FMA's 16). Opt-in per weight (Weight2D::bf16_activations): the rounding costs about
// 8 bits of each activation, so results differ from the f32 path by about 2^-9 relative per product.
//
// Per (row, token) the arithmetic is fixed: 16 lane sums over k in steps of 32 (each step one vdpbf16ps), then a
// halving tree over the lanes (lane i + lane i+8, then +4, +2, +1). It does not depend on the tile a pair falls in,
// on how many tokens the product has, or on how rows are split between threads: a token's result is bitwise the same
// whatever the batch.
#pragma once

#include <cstdint>
#include <vector>

#include "whale/core/thread_pool.h"
#include "whale/core/uninit_vector.h"
#include "whale/kernels/weight.h"

namespace whale::bf16dot {

// Products of at most this many tokens (decode, and batched steps of a few sequences) stream the weights in tiles of
// 8 to 4 rows × those tokens, read in place, once; more tokens go through the 4 × 6 tiles over panels of rows held in
// L2, which read each weight from memory with only the hardware's prefetch (3-5 tokens that way streamed at about half
// the one-token rate). Both give the same bits per (row, token), so
// a marked weight rounds every product, whatever its token count, and a token's result does not depend on its batch
// (a served request's output on whom it shares a step with).
inline constexpr int64_t kStreamTokens = 6;

// Rows of the panel that a product of more than kStreamTokens tokens holds in L2 while every token sweeps it, at
// K = k columns.
int64_t panel_rows(int64_t k);

// True when this CPU has AVX512-BF16 (with AVX512F/BW) and the OS saves the AVX-512 state. Cached after the first call.
bool available();

// True when available() and k (the weight's columns) is a positive multiple of 32.
bool usable(int64_t k);

// Activations x [m, k] rounded to bf16 (nearest, ties to even), row-major [m, k] from a 64-byte boundary (k is a
// multiple of 32 where the tiles read them, so every row's vectors are whole cache lines).
struct RoundedActivations {
  int64_t m = 0, k = 0;
  UninitVector<uint16_t> buffer;  // written in full by round_activations, from `offset` on
  size_t offset = 0;
  const uint16_t* data() const { return buffer.data() + offset; }
  uint16_t* data() { return buffer.data() + offset; }
  size_t size() const { return static_cast<size_t>(m * k); }
};

// Rounds x [m, k] (row stride ldx) into out; with a pool, prompt-sized inputs are split between its threads by
// tokens. Bitwise f32_to_bf16 of every value.
void round_activations(const float* x, int64_t m, int64_t k, int64_t ldx, RoundedActivations& out,
                       ThreadPool* pool = nullptr);

// y[t·ldy + r − r0] = W[r] · x[t] for rows [r0, r1) of a BF16 weight and all xb.m tokens. Returns false, doing
// nothing, when usable(w.cols) is false, W is not BF16, or xb.k != w.cols. For more than kStreamTokens tokens, rows
// that do not start on a 64-byte boundary (a checkpoint's tensors start where the file puts them) are copied, a panel
// at a time, into `scratch` (the calling thread's, kept between calls), so that no load of the tiles straddles two
// cache lines.
bool rows(const Weight2D& w, int64_t r0, int64_t r1, const RoundedActivations& xb, float* y, int64_t ldy,
          std::vector<uint16_t>& scratch);

// Scalar model of rows (any CPU): each lane as vdpbf16ps computes it (the odd product of a pair added first, then
// the even one, each rounded to f32), then the same halving tree. The oracle for the tests.
void rows_reference(const Weight2D& w, int64_t r0, int64_t r1, const RoundedActivations& xb, float* y, int64_t ldy);

}  // namespace whale::bf16dot
