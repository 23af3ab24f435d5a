// Matrix products of f32 activations with weights in their stored dtype.
#pragma once

#include <cstdint>

#include "whale/core/thread_pool.h"
#include "whale/kernels/weight.h"

namespace whale {

// out[r - r0, c] = W[r, c] as f32 (block scale applied) for r in [r0, r1); out is [(r1 - r0), W.cols].
void decode_rows(const Weight2D& w, int64_t r0, int64_t r1, float* out);

// y[M, N] = x[M, K] · W[N, K]ᵀ; x and y row-major f32, W [N, K] in any Weight2D dtype. Rows of y are computed
// independently, so a row's result does not depend on M.
void matmul(const Weight2D& w, const float* x, int64_t m, float* y, ThreadPool& pool);

// Scalar reference of matmul, accumulating in double: the oracle for matmul's tests.
void matmul_reference(const Weight2D& w, const float* x, int64_t m, float* y);

// Dot product of two f32 vectors of length n.
float dot(const float* a, const float* b, int64_t n);

}  // namespace whale
