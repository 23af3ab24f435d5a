#include "whale/kernels/norm.h"

#include <cmath>

namespace whale {

void rmsnorm(const float* x, const float* w, int64_t n, float eps, float* out) {
  // The squares summed in double by 16 independent partial sums (lane j takes i ≡ j mod 16), then those in order: one
  // chain of 2048 dependent double adds was ~3.4 µs of every decode layer's serial work. A float's square is exact in
  // double, so only the order of the adds differs from a single chain, always the same whatever the vector width.
  constexpr int kLanes = 16;
  double partial[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) partial[j] += static_cast<double>(x[i + j]) * x[i + j];
  for (int j = 0; i < n; ++i, ++j) partial[j] += static_cast<double>(x[i]) * x[i];
  double sum_sq = 0.0;
  for (double p : partial) sum_sq += p;
  const float inv = static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(n) + eps));
  for (int64_t k = 0; k < n; ++k) out[k] = w[k] * (x[k] * inv);
}

}  // namespace whale
