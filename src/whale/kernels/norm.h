#pragma once

#include <cstdint>

namespace whale {

// out[i] = w[i] · x[i] / sqrt(mean(x²) + eps) for i < n; out may alias x (deepseek-spec §2.2).
void rmsnorm(const float* x, const float* w, int64_t n, float eps, float* out);

}  // namespace whale
