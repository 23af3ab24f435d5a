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

void rope_interleaved(float* x, const std::vector<double>& inv_freq, int64_t pos) {
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    const double angle = static_cast<double>(pos) * inv_freq[i];
    const double c = std::cos(angle), s = std::sin(angle);
    const double a = x[2 * i], b = x[2 * i + 1];
    x[2 * i] = static_cast<float>(a * c - b * s);
    x[2 * i + 1] = static_cast<float>(a * s + b * c);
  }
}

}  // namespace whale
