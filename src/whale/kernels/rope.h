// Rotary position embedding of DeepSeek's decoupled rope channels, with YaRN-adjusted frequencies.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>


namespace whale {

struct RopeScaling {  // YaRN parameters from config.json rope_scaling (deepseek-spec §2.6)
  double factor = 1.0;
  int original_max_position_embeddings = 4096;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  double mscale = 1.0;
  double mscale_all_dim = 0.0;
};

// ω_i for i < dim/2: θ^(-2i/dim), blended toward ω_i/factor by the YaRN ramp when scaling is given
// (deepseek-spec §2.6).
std::vector<double> rope_inverse_frequencies(int dim, double theta, const std::optional<RopeScaling>& scaling);

// One position's rotation: cos and sin of pos·ω_i for every i. Computed once per token, it serves every head and the
// cached key (the sines and cosines cost far more than the rotations themselves).
struct RopeRotation {
  std::vector<double> cos, sin;
};
RopeRotation rope_rotation(const std::vector<double>& inv_freq, int64_t pos);

// Rotates adjacent pairs (x[2i], x[2i+1]) by the angle pos·ω_i, in place (deepseek-spec §2.5).
void rope_interleaved(float* x, const RopeRotation& r);
void rope_interleaved(float* x, const std::vector<double>& inv_freq, int64_t pos);

}  // namespace whale
