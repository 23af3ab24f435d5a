#include "whale/train/grpo.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

#include "whale/core/error.h"

namespace whale::train {

std::vector<float> group_advantages(std::span<const double> rewards, int64_t group_size) {
  const int64_t n = static_cast<int64_t>(rewards.size());
  if (group_size < 2) fail("GRPO: group size {} (at least 2 samples per prompt are needed)", group_size);
  if (n == 0 || n % group_size != 0) fail("GRPO: {} rewards are not whole groups of {}", n, group_size);
  std::vector<float> advantages(static_cast<size_t>(n));
  for (int64_t g0 = 0; g0 < n; g0 += group_size) {
    // Equal rewards get exactly 0, not the rounding residue of r − mean over 1e-4 (0.1 · 8 / 8 != 0.1).
    const auto group = rewards.subspan(static_cast<size_t>(g0), static_cast<size_t>(group_size));
    if (std::all_of(group.begin(), group.end(), [&](double r) { return r == group[0]; })) continue;
    double mean = 0.0;
    for (int64_t i = g0; i < g0 + group_size; ++i) mean += rewards[i];
    mean /= static_cast<double>(group_size);
    double var = 0.0;
    for (int64_t i = g0; i < g0 + group_size; ++i) var += (rewards[i] - mean) * (rewards[i] - mean);
    const double sd = std::sqrt(var / static_cast<double>(group_size - 1));
    for (int64_t i = g0; i < g0 + group_size; ++i)
      advantages[i] = static_cast<float>((rewards[i] - mean) / (sd + 1e-4));
  }
  return advantages;
}

void shuffle_rewards(std::span<double> rewards, RewardShuffle scope, int64_t group_size, uint64_t seed) {
  if (scope == RewardShuffle::Off || rewards.empty()) return;
  const int64_t n = static_cast<int64_t>(rewards.size());
  const int64_t span = scope == RewardShuffle::Step ? n : group_size;
  if (span < 1 || n % span != 0) fail("GRPO: {} rewards are not whole groups of {}", n, group_size);
  std::mt19937_64 rng(seed);
  for (int64_t g0 = 0; g0 < n; g0 += span)
    for (int64_t i = span; i > 1; --i) std::swap(rewards[g0 + i - 1], rewards[g0 + rng() % i]);
}

double mixed_group_fraction(std::span<const float> advantages, int64_t group_size) {
  const int64_t n = static_cast<int64_t>(advantages.size());
  if (group_size < 1 || n == 0 || n % group_size != 0)
    fail("GRPO: {} advantages are not whole groups of {}", n, group_size);
  int64_t mixed = 0;
  for (int64_t g0 = 0; g0 < n; g0 += group_size) {
    const auto group = advantages.subspan(static_cast<size_t>(g0), static_cast<size_t>(group_size));
    mixed += std::any_of(group.begin(), group.end(), [](float a) { return a != 0.0f; });
  }
  return static_cast<double>(mixed) / static_cast<double>(n / group_size);
}

double grpo_objective(std::span<const float> logp, std::span<const float> old_logp, std::span<const float> ref_logp,
                      std::span<const float> advantage, const GrpoSettings& s, double normalizer,
                      std::span<float> scale, GrpoStats* stats) {
  const size_t T = logp.size();
  if (old_logp.size() != T || ref_logp.size() != T || advantage.size() != T || scale.size() != T)
    fail("GRPO: {} log-probabilities but {} old, {} reference, {} advantages, {} scales", T, old_logp.size(),
         ref_logp.size(), advantage.size(), scale.size());
  if (!(normalizer > 0.0)) fail("GRPO: token normalizer {} (must be positive)", normalizer);
  double total = 0.0;
  GrpoStats local;
  for (size_t i = 0; i < T; ++i) {
    const double lp = logp[i], a = advantage[i];
    const double rho = std::exp(lp - old_logp[i]);
    const double clipped_rho = std::clamp(rho, 1.0 - s.clip_eps, 1.0 + s.clip_eps);
    // min(ρA, clip(ρ)A): where the clipped term is the smaller one it is constant in logp, so no gradient.
    const bool clipped = clipped_rho * a < rho * a;
    const double surrogate = clipped ? clipped_rho * a : rho * a;
    const double d_surrogate = clipped ? 0.0 : rho * a;
    const double diff = ref_logp[i] - lp, e = std::exp(diff);
    const double k3 = e - diff - 1.0;
    const double d_k3 = 1.0 - e;  // ∂k3/∂logp
    total += surrogate - s.beta * k3;
    scale[i] = static_cast<float>((d_surrogate - s.beta * d_k3) / normalizer);
    local.kl += k3;
    local.ratio += rho;
    local.clipped += clipped;
  }
  local.tokens = static_cast<int64_t>(T);
  if (stats) {
    stats->kl += local.kl;
    stats->ratio += local.ratio;
    stats->clipped += local.clipped;
    stats->tokens += local.tokens;
  }
  return -total / normalizer;
}

}  // namespace whale::train
