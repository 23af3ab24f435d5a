// The f32 GEMM of training, from OpenBLAS, loaded at first use.
//
// Why loaded and not linked: OpenBLAS picks its kernels when the library is initialised, from a table of CPU models.
// Debian's 0.3.21 does not know recent Xeons (family 6, model 0xCF) and falls back to its SSE3 "Prescott" kernels,
// 2.4x slower on this machine than its AVX-512 ones. The choice can only be forced through the environment variable
// OPENBLAS_CORETYPE before initialisation, so whale sets it from the CPU's features (unless the user already has)
// and then loads the library. OpenBLAS runs single-threaded: whale's one pool splits the work.
#pragma once

#include <cstdint>
#include <string>

namespace whale::train {

// Row-major C[M, N] = alpha · op(A) · op(B) + beta · C, op(X) = Xᵀ when trans_x (cblas_sgemm's contract).
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
           const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The kernel family OpenBLAS runs (e.g. "SkylakeX"); loads the library if needed. Throws Error if it is missing.
std::string blas_core_name();

}  // namespace whale::train
