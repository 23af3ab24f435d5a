#pragma once

#include <cmath>
#include <cstdint>

namespace whale {

inline float sigmoid(float z) { return 1.0f / (1.0f + std::exp(-z)); }
inline float silu(float z) { return z * sigmoid(z); }

// x[i] = exp(x[i] - max) / Σ exp(x[j] - max) for i < n; -inf entries become 0. n >= 1.
void softmax_inplace(float* x, int64_t n);

// gate[i] = silu(gate[i]) · up[i]: the SwiGLU product (deepseek-spec §2.3).
void swiglu_inplace(float* gate, const float* up, int64_t n);

}  // namespace whale
