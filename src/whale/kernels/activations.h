#pragma once

#include <cmath>
#include <cstdint>

namespace whale {

inline float sigmoid(float z) { return 1.0f / (1.0f + std::exp(-z)); }
inline float silu(float z) { return z * sigmoid(z); }

// x[i] = exp(x[i] - max) / Σ exp(x[j] - max) for i < n; -inf entries become 0. n >= 1.
void softmax_inplace(float* x, int64_t n);

// w[i] = exp(z[i] − shift) for i < n, and returns Σ w[i] summed in double: the normaliser of a softmax over a
// vocabulary (the sampler's). z[i] = −inf gives w[i] = 0; each w[i] is within 1 ulp of e^(z[i] − shift) above the
// subnormal range (Highway's Exp). Intended for shift = max z, so that no w[i] exceeds 1.
double exp_shifted_sum(const double* z, double shift, double* w, int64_t n);

// The lowest i < n with z[i] = max z (the greedy token, ties to the lowest id). n >= 1; z holds no NaN.
int64_t first_argmax(const double* z, int64_t n);
int64_t first_argmax(const float* z, int64_t n);

// gate[i] = silu(gate[i]) · up[i]: the SwiGLU product (deepseek-spec §2.3).
void swiglu_inplace(float* gate, const float* up, int64_t n);

// The backward of h = silu(g) ⊙ u (training): du = dh ⊙ silu(g), dg = dh ⊙ u ⊙ σ(g)·(1 + g·(1 − σ(g))).
void swiglu_backward(const float* g, const float* u, const float* dh, float* dg, float* du, int64_t n);

// y[t, :n] += Σ_j coef[t·ldc + j] · rows[j·ldr + :n] for t < m, j < k: products of activations with a matrix stored
// by rows of the output dimension (x·W rather than W·x), such as attention weights times cached latents.
void add_scaled_rows(const float* coef, int64_t ldc, int64_t m, const float* rows, int64_t ldr, int64_t k, int64_t n,
                     float* y, int64_t ldy);

// The same with bf16 rows (bit patterns), read in place: bitwise add_scaled_rows of the rows widened to f32. With
// prefetch_bytes ≠ 0 every line of rows read is prefetched that many bytes further on (rows streamed from memory).
void add_scaled_bf16_rows(const float* coef, int64_t ldc, int64_t m, const uint16_t* rows, int64_t ldr, int64_t k,
                          int64_t n, float* y, int64_t ldy, int64_t prefetch_bytes = 0);

// add_scaled_rows with row j at rows[j] (pages of a cache), bitwise the same, for many rows j streamed from memory:
// each row's lines are read from memory once per call and prefetched a block of rows ahead.
void add_scaled_rows_at(const float* coef, int64_t ldc, int64_t m, const float* const* rows, int64_t k, int64_t n,
                        float* y, int64_t ldy);

// out[i·ldo + j] = Σ_c q[i·ldq + c] · keys[j·ldk + c] for i < m, j < n, c < k: every query against every key, such as
// attention's scores against cached latents. A dot product's bits depend only on its two rows (and the instruction
// set), not on m, n or where a call starts, so that scores come out the same however queries and cache pages are
// grouped. While it computes, the call prefetches prefetch_bytes from `prefetch` on (null: none), such as the next
// cache page's keys, spread over its work.
void row_dots(const float* q, int64_t ldq, int64_t m, const float* keys, int64_t ldk, int64_t n, int64_t k, float* out,
              int64_t ldo, const float* prefetch = nullptr, int64_t prefetch_bytes = 0);

// The same in double precision, one product at a time, rounded to f32 once at the end: row_dots' reference.
void row_dots_reference(const float* q, int64_t ldq, int64_t m, const float* keys, int64_t ldk, int64_t n, int64_t k,
                        float* out, int64_t ldo);

}  // namespace whale
