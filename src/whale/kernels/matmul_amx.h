// q8/q4 products for many tokens on Intel AMX (TMUL int8 tiles), where the CPU and the OS offer it.
// The integer block sums are exact and go through the same f32 steps as the VNNI and portable tiles
// (f = fma(float(sum), s_w · s_x, f), block by block), so results are bitwise those of matmul_simd's tile_quant.
#pragma once

#include <cstdint>
#include <vector>

#include "whale/kernels/matmul_simd.h"
#include "whale/kernels/weight.h"

namespace whale::amx {

// Tokens per AMX tile (rows of the activation and result tiles).
inline constexpr int kTileTokens = 16;

// True when this CPU has AMX-TILE, AMX-INT8 and AVX-512, and the kernel granted this process the tile state.
// The first call asks the kernel (arch_prctl); later calls return the cached answer.
bool available();

// Row groups [g0, g1) of a q8/q4 weight times all xq.m tokens: y[t·ldy + r] for every row r of those groups below
// w.rows. The tiles load xq's tokens in whole tiles, padding included (quantize_activations pads from 16 tokens on).
// `scratch` is the calling thread's buffer. Returns false, doing nothing, when available() is false or xq is not
// padded to a multiple of kTileTokens.
bool quant_groups(const Weight2D& w, int64_t g0, int64_t g1, const simd::QuantizedActivations& xq, float* y,
                  int64_t ldy, std::vector<uint8_t>& scratch);

// BF16 products of at least this many tokens run on AMX-BF16 tiles (prompts; decode batches stay on the f32 path).
inline constexpr int64_t kBf16MinTokens = 32;

// f32 activations for BF16 tiles, each value split in two bf16 (x ≈ hi + lo, with lo = bf16(x − hi): about 16
// significant bits instead of f32's 24, so each product is accurate to about 2^-16 relative), in the layout of the
// tile unit's second operand: [token tiles][k/32][16 column pairs][16 tokens][2].
struct Bf16Activations {
  int64_t m = 0, k = 0;
  std::vector<uint16_t> hi, lo;
};

// True when AMX-BF16 tiles can be used (CPU, OS) and k is a multiple of 32.
bool bf16_usable(int64_t k);

// Splits x [m, k] (row stride ldx) into out.
void split_bf16(const float* x, int64_t m, int64_t k, int64_t ldx, Bf16Activations& out);

// Rows [r0, r1) of a BF16 weight times all xb.m tokens: y[t·ldy + r]. Returns false, doing nothing, when
// bf16_usable(w.cols) is false.
bool bf16_rows(const Weight2D& w, int64_t r0, int64_t r1, const Bf16Activations& xb, float* y, int64_t ldy,
               std::vector<uint8_t>& scratch);

}  // namespace whale::amx
