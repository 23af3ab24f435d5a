// The SIMD building blocks of matmul (Highway, one copy per instruction set, chosen at run time): float-format rows,
// tiles and panels in matmul_simd.cc; q8/q4 tiles in matmul_simd_quant.cc and their x·W in matmul_simd_xw.cc; the
// activations' rounding in quantize_activations_simd.cc.
// matmul.cc tiles and threads them; tests compare each against the scalar references.
#pragma once

#include <cstdint>
#include <vector>

#include "whale/core/thread_pool.h"
#include "whale/core/uninit_vector.h"
#include "whale/kernels/quant_format.h"
#include "whale/kernels/weight.h"

namespace whale::simd {

// Activations quantized for Q8/Q4 weights: each token's row in blocks of kQuantBlock int8 values q with one f32
// scale (x ≈ scale · q, scale = absmax / 127), zero-padded to the weight's padded_cols. From kQuantTokenPad tokens
// on (the AMX tiles' size, which load whole tiles of tokens), zero tokens follow the m real ones up to a multiple of
// it; fewer tokens (decode) are not padded: zeroing 15 rows per product cost decode more than its arithmetic.
inline constexpr int64_t kQuantTokenPad = 16;
// Rows of the plain layout for m tokens.
inline constexpr int64_t quantized_rows(int64_t m) {
  return m < kQuantTokenPad ? m : (m + kQuantTokenPad - 1) / kQuantTokenPad * kQuantTokenPad;
}
//
// The same values again, tiled for the VNNI tiles: tokens in tiles of kQuantTileTokens, and within a tile block by
// block, the tile's tokens side by side ([tile][block][token][32] codes, [tile][block][token] scales and corrections).
// A tile then finds every token's bytes of a block at fixed offsets from one pointer, instead of holding a pointer
// per token (8 tokens' pointers and their strides did not fit the x86 registers: the compiler spilled them).
inline constexpr int kQuantTileTokens = 8;
struct QuantizedActivations {
  QuantType type = QuantType::Q8;
  int64_t m = 0, blocks = 0;
  // Uninitialized when sized: quantize_activations writes every element, token by token, on the pool's threads.
  UninitVector<int8_t> q;       // [m padded, blocks · 32]
  UninitVector<float> scale;    // [m padded, blocks]
  UninitVector<int32_t> corr;   // [m padded, blocks]: −bias · Σ q, bias = 128 (q8) or 8 (q4), the unsigned-code correction
  // Written only where the VNNI tiles run and m > 1 (empty otherwise: one token's tiles read q, scale and corr), in
  // whole tiles whose tokens past m are left unwritten.
  UninitVector<int8_t> tiled_q;       // q, tiled
  UninitVector<float> tiled_scale;    // scale, tiled
  UninitVector<int32_t> tiled_corr;   // corr, tiled
};

// Quantizes x [m, k] (row stride ldx) for weights of type t with padded_cols columns. With a pool, enough tokens
// (prompts) are split between its threads; the result is the same either way.
void quantize_activations(const float* x, int64_t m, int64_t k, int64_t ldx, QuantType t, int64_t padded_cols,
                          QuantizedActivations& out, ThreadPool* pool = nullptr);

// x [m, k] as 2m quantized rows for products that need about 16 bits of each activation: rows [0, m) round x as
// quantize_activations does; rows [m, 2m) round what that left, x minus the first rounding's value. Row for row the
// same as quantize_activations of [x; x − first rounding].
void quantize_activations_wide(const float* x, int64_t m, int64_t k, int64_t ldx, QuantType t, int64_t padded_cols,
                               QuantizedActivations& out, ThreadPool* pool = nullptr);

// out[r - r0, c] = W[r, c] as f32 for r in [r0, r1), any dtype; bitwise equal to the scalar decode.
void decode_rows(const Weight2D& w, int64_t r0, int64_t r1, float* out);

// Most tokens tile_float takes with more than 4 rows (tiles of 8 rows).
inline constexpr int kWideFloatTileTokens = 2;

// Float weights (F32, BF16, F16, F8_E4M3 with block_cols a multiple of 16): y[t·ldy + i] = W[r0 + i] · x[t·ldx]
// for i < n_rows ≤ 4 and t < n_tokens ≤ 4, or n_rows ≤ 8 and n_tokens ≤ kWideFloatTileTokens. The per-(row, token)
// arithmetic does not depend on n_rows, n_tokens, or on whether W is the checkpoint's tensor or an F32 panel decoded
// from it.
void tile_float(const Weight2D& w, int64_t r0, int n_rows, const float* x, int64_t ldx, int n_tokens, float* y,
                int64_t ldy);

// The same for rows [r0, r1) of a float-format weight and m tokens of any count: y[t·ldy + r - r0]. The rows are
// decoded once into an f32 panel (in `panel`, the caller's scratch, kept between calls) that all tokens then sweep;
// aligned F32 rows are swept in place. Bitwise equal to tile_float, faster for many tokens.
void panel_rows(const Weight2D& w, int64_t r0, int64_t r1, const float* x, int64_t ldx, int64_t m, float* y,
                int64_t ldy, std::vector<float>& panel);

// Q8/Q4 weights: the same for row group g (rows 16g..16g+15, of which n_rows ≤ 16 are written) and quantized tokens
// [t0, t0 + n_tokens), n_tokens ≤ kQuantTileTokens. Arithmetic per (row, token) is independent of n_rows, n_tokens
// and the instruction set: results are bitwise equal everywhere.
void tile_quant(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq, int64_t t0, int n_tokens,
                float* y, int64_t ldy);

// Most tokens tile_quant_pair takes at once (q4; q8 takes 1-2).
inline constexpr int kQuantPairTokens = 6;

// The same for row groups g (all 16 rows) and g + 1 (n_rows of them) at once and n_tokens tokens within one tile of
// kQuantTileTokens, where this instruction set has a kernel for two groups and that many tokens (VNNI: q4 1-6, q8
// 1-2); returns false, doing nothing, elsewhere. Bitwise equal to two calls of tile_quant. prefetch = false leaves
// out the software prefetches (of these groups' next lines and of the rows beyond them): for the later passes of
// several over the same pair, whose first pass fetched all of that already.
bool tile_quant_pair(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq, int64_t t0,
                     int n_tokens, float* y, int64_t ldy, bool prefetch = true);

// The same for row groups g, g + 1, g + 2 (all 16 rows) and g + 3 (n_rows of them) and the one token t0: four
// streams of weights in flight. Returns false, doing nothing, where this instruction set has no such kernel (it has
// one for VNNI). Bitwise equal to four calls of tile_quant.
bool tile_quant_quad(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq, int64_t t0, float* y,
                     int64_t ldy);

// q8/q4 weights, x·W: y[t·ldy + c] += Σ_i x[t·ldx + i] · W[16·g0 + i, c] for i < 16·groups (x holds 16·groups
// values per token; rows past the weight's end must get x = 0), c < W.cols. Returns false, doing nothing, where this
// instruction set has no such kernel. Each line read prefetches its group's line a little further on; with
// prefetch_g0 ≥ 0, those past the rows' last blocks are the first lines of as many groups from prefetch_g0 on (the
// caller's next call).
bool xw_quant(const Weight2D& w, int64_t g0, int64_t groups, const float* x, int64_t ldx, int64_t m, float* y,
              int64_t ldy, int64_t prefetch_g0 = -1);

// Whether tile_quant reads the tiled copy of the activations on this CPU (the VNNI tiles do; the portable tiles and
// AMX read the plain layout), so that quantize_activations writes the copy only where it is read.
bool uses_tiled_activations();

// Name of the instruction set the dispatcher picked (for bench output and logs).
const char* target_name();

}  // namespace whale::simd
