#include "whale/kernels/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace whale {

std::vector<double> rope_inverse_frequencies(int dim, double theta, const std::optional<RopeScaling>& scaling) {
  std::vector<double> freq(dim / 2);
  for (int i = 0; i < dim / 2; ++i) freq[i] = std::pow(theta, -2.0 * i / dim);
  if (!scaling || scaling->factor <= 1.0) return freq;

  // The dimension whose wavelength completes `rotations` turns over the original context.
  auto correction_dim = [&](double rotations) {
    return dim * std::log(scaling->original_max_position_embeddings / (rotations * 2.0 * std::numbers::pi)) /
           (2.0 * std::log(theta));
  };
  const double low = std::max(std::floor(correction_dim(scaling->beta_fast)), 0.0);
  double high = std::min(std::ceil(correction_dim(scaling->beta_slow)), static_cast<double>(dim - 1));
  if (low == high) high += 0.001;
  for (int i = 0; i < dim / 2; ++i) {
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    freq[i] = freq[i] * (1.0 - ramp) + freq[i] / scaling->factor * ramp;
  }
  return freq;
}

RopeRotation rope_rotation(const std::vector<double>& inv_freq, int64_t pos) {
  RopeRotation r{std::vector<double>(inv_freq.size()), std::vector<double>(inv_freq.size())};
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    const double angle = static_cast<double>(pos) * inv_freq[i];
    r.cos[i] = std::cos(angle);
    r.sin[i] = std::sin(angle);
  }
  return r;
}

void rope_interleaved(float* x, const RopeRotation& r) {
  for (size_t i = 0; i < r.cos.size(); ++i) {
    const double c = r.cos[i], s = r.sin[i];
    const double a = x[2 * i], b = x[2 * i + 1];
    x[2 * i] = static_cast<float>(a * c - b * s);
    x[2 * i + 1] = static_cast<float>(a * s + b * c);
  }
}

void rope_interleaved(float* x, const std::vector<double>& inv_freq, int64_t pos) {
  rope_interleaved(x, rope_rotation(inv_freq, pos));
}

}  // namespace whale
