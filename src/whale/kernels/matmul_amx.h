// q8/q4 products for many tokens on Intel AMX (TMUL int8 tiles), where the CPU and the OS offer it.
// The integer block sums are exact and go through the same f32 steps as the VNNI and portable tiles
// (f = fma(float(sum), s_w · s_x, f), block by block), so results are bitwise those of matmul_simd's tile_quant.
#pragma once

#include <cstdint>

#include "whale/kernels/matmul_simd.h"
#include "whale/kernels/weight.h"

namespace whale::amx {

// Tokens per AMX tile (rows of the activation and result tiles).
inline constexpr int kTileTokens = 16;

// True when this CPU has AMX-TILE, AMX-INT8 and AVX-512, and the kernel granted this process the tile state.
// The first call asks the kernel (arch_prctl); later calls return the cached answer.
bool available();

// Row groups [g0, g1) of a q8/q4 weight times all xq.m tokens: y[t·ldy + r] for every row r of those groups below
// w.rows. xq must hold its tokens padded to a multiple of kTileTokens (quantize_activations does). `scratch` is
// the calling thread's buffer. Returns false, doing nothing, when available() is false.
bool quant_groups(const Weight2D& w, int64_t g0, int64_t g1, const simd::QuantizedActivations& xq, float* y,
                  int64_t ldy, std::vector<uint8_t>& scratch);

}  // namespace whale::amx
