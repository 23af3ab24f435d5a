// Matrix products of f32 activations with weights in their stored format (F32, BF16, F16, FP8 e4m3 with block
// scales, whale q8/q4), read in place: nothing is expanded at load.
//
// How a product is computed (matmul.cc, kernels in matmul_simd.cc):
// - up to 4 tokens (decode): tiles of 4 rows × the tokens stream the weights once, decoding them in registers;
//   q8/q4 weights multiply int8-quantized activations with integer dot products (VNNI where the CPU has it);
// - more tokens (prefill): each thread decodes a panel of rows to f32 once and reuses it for all tokens.
// For float formats both paths give bitwise the same result for a given (row, token): a row's output never depends
// on how many tokens are in the batch. For q8/q4 the decode path quantizes activations and the prefill path does not.
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
};

// matmul on the calling thread only, for callers that already spread their work over the pool.
void matmul_serial(const Weight2D& w, const float* x, int64_t m, float* y);

// Rows [r0, r1) of w as a weight of their own, read in place, if the format allows a cut there (q8/q4: r0 a multiple
// of 16; FP8: of block_rows); otherwise nullopt.
std::optional<Weight2D> weight_rows(const Weight2D& w, int64_t r0, int64_t r1);

// x·W with W read in place: y[t·ldy + c] += Σ_i x[t·ldx + i] · W[r0 + i, c] for t < m, i < r1 - r0, c < W.cols
// (products with a matrix stored by rows of the output dimension, like absorbed attention's W_UK). Serial.
void add_scaled_weight_rows(const Weight2D& w, int64_t r0, int64_t r1, const float* x, int64_t ldx, int64_t m,
                            float* y, int64_t ldy);

// Runs independent products in one pass over the pool (one fork/join instead of one per product): the experts of a
// token, or gate and up projections. Jobs may share x; their outputs must not overlap.
void matmul_batch(std::span<const MatmulJob> jobs, ThreadPool& pool);

// Scalar reference of matmul, accumulating in double: the oracle for matmul's tests.
void matmul_reference(const Weight2D& w, const float* x, int64_t m, float* y);

// Dot product of two f32 vectors of length n.
float dot(const float* a, const float* b, int64_t n);

// The instruction set the kernels run with on this CPU ("AVX3_DL", "AVX2", "NEON", ...).
const char* matmul_target_name();

}  // namespace whale
