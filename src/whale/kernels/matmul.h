// Matrix products of f32 activations with weights in their stored format (F32, BF16, F16, FP8 e4m3 with block
// scales, whale q8/q4), read in place: nothing is expanded at load.
//
// How a product is computed (matmul.cc; kernels in matmul_simd*.cc, matmul_bf16_dot.cc and matmul_amx.cc):
// - q8/q4, any number of tokens: activations quantized to int8 per 32-block, integer dot products per block in tiles
//   of 16 rows × up to 8 tokens (AVX-512 VNNI, else portable integer code), or for more than 16 tokens AMX int8
//   tiles where the CPU has them. The integer sums are exact and their f32 scaling runs in one fixed order, so a token's
//   result is bitwise the same whatever the batch size and instruction set.
// - float formats, up to 4 tokens (decode): tiles of 4 rows (8 for 1-2 tokens) × the tokens stream the weights once,
//   decoding them in registers; more tokens: each thread decodes a panel of rows to f32 once and reuses it for all
//   tokens. Both give bitwise the same result for a given (row, token).
// - BF16, 32 or more tokens (prompts) with K a multiple of 32, on CPUs with AMX-BF16: tiles with each activation split
//   into two bf16 (hi + lo), accurate to about 2^-16 relative per product; not bitwise equal to the f32 path.
// - BF16 weights marked bf16_activations (--activations bf16, the CLI's default), any number of tokens, K a multiple
//   of 32, on CPUs with AVX512-BF16 and no AMX: activations rounded once to bf16, vdpbf16ps tiles (matmul_bf16_dot.h).
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "whale/core/thread_pool.h"
#include "whale/kernels/weight.h"

namespace whale {

// out[r - r0, c] = W[r, c] as f32 (block scale applied) for r in [r0, r1); out is [(r1 - r0), W.cols].
void decode_rows(const Weight2D& w, int64_t r0, int64_t r1, float* out);

// y[M, N] = x[M, K] · W[N, K]ᵀ; x and y row-major f32, W [N, K] in any Weight2D format.
void matmul(const Weight2D& w, const float* x, int64_t m, float* y, ThreadPool& pool);

// One product of a batch: y [m, w.rows] = x [m, w.cols] · wᵀ.
struct MatmulJob {
  Weight2D w;
  const float* x = nullptr;
  int64_t m = 0;
  float* y = nullptr;
  // Float weights: f32 arithmetic at every token count, never the AMX-BF16 tiles (whose split activations carry
  // about 16 bits), so that results do not depend on how tokens are batched. For small, decisive products: the MoE
  // router, whose scores pick the experts.
  bool exact = false;
};

// matmul on the calling thread only, for callers that already spread their work over the pool.
void matmul_serial(const Weight2D& w, const float* x, int64_t m, float* y);

// matmul_serial, but q8/q4 weights meet the activations rounded to about 16 bits instead of 8: each is rounded to int8,
// then what that left is rounded again, and y = W·hi + W·lo in the integer tiles. For the few small products whose
// inputs are too sensitive to one int8 rounding (the cached latents and their mixes going through kv_b_proj). Each
// token's result is the same whatever m. Same as matmul_serial for other formats.
void matmul_serial_wide_activations(const Weight2D& w, const float* x, int64_t m, float* y);

// The same over the pool (prompt-sized products: the expanded attention's kv_b over all cached latents).
void matmul_wide_activations(const Weight2D& w, const float* x, int64_t m, float* y, ThreadPool& pool);

// Rows [r0, r1) of w as a weight of their own, read in place, if the format allows a cut there (q8/q4: r0 a multiple
// of 16; FP8: of block_rows); otherwise nullopt.
std::optional<Weight2D> weight_rows(const Weight2D& w, int64_t r0, int64_t r1);

// x·W with W read in place: y[t·ldy + c] += Σ_i x[t·ldx + i] · W[r0 + i, c] for t < m, i < r1 - r0, c < W.cols
// (products with a matrix stored by rows of the output dimension, like absorbed attention's W_UK). Serial. With
// prefetch_r0 ≥ 0, rows [prefetch_r0, prefetch_r0 + r1 − r0) (the caller's next call) are fetched into cache: for
// q8/q4 and BF16 their first lines, as these rows end (each call streams its own rows ahead of itself); for other
// formats all of them, first.
// Each token's row is bitwise what it would be alone, whatever m (batched decode and chunked prompts rely on it).
void add_scaled_weight_rows(const Weight2D& w, int64_t r0, int64_t r1, const float* x, int64_t ldx, int64_t m,
                            float* y, int64_t ldy, int64_t prefetch_r0 = -1);

// Issues prefetches (into L2) for every byte of rows [r0, r1) of w (q8/q4: their row groups and scales), so that a
// later small product over them reads from cache instead of waiting on memory line by line. Reads nothing itself.
void prefetch_rows(const Weight2D& w, int64_t r0, int64_t r1);

// Runs independent products in one pass over the pool (one fork/join instead of one per product): the experts of a
// token, or gate and up projections. Jobs may share x; their outputs must not overlap.
void matmul_batch(std::span<const MatmulJob> jobs, ThreadPool& pool);

// True when weights marked bf16_activations do multiply prompts with bf16-rounded activations on this CPU: it has
// the AVX512-BF16 dot instruction and no AMX-BF16 (whose prompt tiles, about 16 bits of each activation, take BF16
// prompts wherever they run).
bool rounds_bf16_activations();

// Scalar reference of matmul, accumulating in double: the oracle for matmul's tests.
void matmul_reference(const Weight2D& w, const float* x, int64_t m, float* y);

// Dot product of two f32 vectors of length n.
float dot(const float* a, const float* b, int64_t n);

// The instruction set the kernels run with on this CPU ("AVX3_DL", "AVX2", "NEON", ...).
const char* matmul_target_name();

}  // namespace whale
