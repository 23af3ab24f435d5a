// Forward and backward of the training ops, side by side (llm.c style). All f32, row-major. Backward functions add
// into parameter gradients (dW +=), so micro-batches accumulate; input gradients are written (dx =) unless named
// `add`. A null pool runs on the calling thread (for callers already inside a parallel_for).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "whale/core/thread_pool.h"

namespace whale::train {

// y[N, O] = x[N, I] · W[O, I]ᵀ (+ y when accumulate).
void linear_forward(ThreadPool* pool, const float* x, const float* W, float* y, int64_t N, int64_t I, int64_t O,
                    bool accumulate = false);
// dx[N, I] (= or +=) dy · W (skipped when dx is null); dW[O, I] += dyᵀ · x.
void linear_backward(ThreadPool* pool, const float* x, const float* W, const float* dy, float* dx, float* dW, int64_t N,
                     int64_t I, int64_t O, bool accumulate_dx = false);

// y[n] = w ⊙ x[n] · rstd[n], rstd[n] = 1 / sqrt(mean(x[n]²) + eps), for N rows of D; x, y with row strides.
void rmsnorm_forward(ThreadPool* pool, const float* x, int64_t ldx, const float* w, int64_t N, int64_t D, float eps,
                     float* y, int64_t ldy, float* rstd);
// dx[n] (= or +=) ∂/∂x; dw += Σ_n dy ⊙ x · rstd.
void rmsnorm_backward(ThreadPool* pool, const float* x, int64_t ldx, const float* w, const float* rstd, const float* dy,
                      int64_t ldy, int64_t N, int64_t D, float* dx, int64_t lddx, float* dw, bool accumulate_dx = false);

// Sizes an activation buffer without clearing it: every caller overwrites the whole buffer before reading it.
inline void resize_buffer(std::vector<float>& v, int64_t n) { v.resize(static_cast<size_t>(n)); }

// Runs fn(begin, end) over [0, n) in slices of at least `grain` on the pool, or whole on this thread without one.
void split(ThreadPool* pool, int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// cos / sin of pos·ω_i for pos < T, i < dim/2 (deepseek-spec §2.5; ω with YaRN, kernels/rope.h).
struct RopeTable {
  int half = 0;
  std::vector<float> cos, sin;  // [T, half]
};
RopeTable make_rope_table(const std::vector<double>& inv_freq, int64_t T);

// Rotates the adjacent pairs of x[n, 0:2·half] (row stride ld) by the angle of position n mod T, for N rows;
// inverse = true rotates back (the backward of the forward rotation).
void rope_rotate(float* x, int64_t ld, int64_t N, int64_t T, const RopeTable& table, bool inverse);

// h = silu(g) ⊙ u over n values.
void swiglu_forward(ThreadPool* pool, const float* g, const float* u, float* h, int64_t n);
// dg = dh ⊙ u ⊙ silu'(g), du = dh ⊙ silu(g).
void swiglu_backward(ThreadPool* pool, const float* g, const float* u, const float* dh, float* dg, float* du,
                     int64_t n);

// For each row n with target[n] >= 0: loss_n = logsumexp(logits[n]) − logits[n][target]. Replaces logits[n] by
// scale · (softmax − onehot) (rows without a target by 0), and returns Σ loss_n; *correct counts rows whose argmax
// is the target (when not null).
double cross_entropy(ThreadPool* pool, float* logits, const int32_t* target, int64_t N, int64_t V, float scale,
                     int64_t* correct = nullptr);

// A training objective over the log-probabilities of the scored tokens (GRPO's): given logp[i] of the i-th scored
// row, writes scale[i] = −∂L/∂logp[i] and returns L.
using TokenObjective = std::function<double(std::span<const float> logp, std::span<float> scale)>;

// For the rows with target[n] >= 0, in order (i = 0, 1, …): logp[i] = logits[n][target] − logsumexp(logits[n]);
// then L = objective(logp, scale). With `gradient`, replaces scored rows by grad_scale · scale[i] · (softmax −
// onehot), which is grad_scale · ∂L/∂logits, and the other rows by 0. Returns L.
double scored_log_probs(ThreadPool* pool, float* logits, const int32_t* target, int64_t N, int64_t V,
                        const TokenObjective& objective, bool gradient, float grad_scale = 1.0f);

}  // namespace whale::train
