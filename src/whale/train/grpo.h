// GRPO's objective (DeepSeekMath §4.1, R1): group-relative advantages, a clipped probability ratio and a k3 KL
// penalty to a frozen reference, averaged over every scored token of a step (token-level loss). The policy's
// log-probabilities come from Transformer::run_objective, which turns this objective's scales into gradients.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace whale::train {

struct GrpoSettings {
  double clip_eps = 0.2;  // ε: the ratio is clipped to [1 − ε, 1 + ε]
  double beta = 0.04;     // β of the KL penalty; 0 turns it off
};

// Advantages of samples drawn in groups of group_size consecutive ones: A = (r − mean) / (std + 1e-4), with the
// group's mean and unbiased standard deviation. A group whose rewards are all equal gets 0: it teaches nothing.
// Throws Error unless rewards.size() is a positive multiple of group_size >= 2.
std::vector<float> group_advantages(std::span<const double> rewards, int64_t group_size);

// What a control run's reward shuffle mixes: nothing, all of a step's samples, or each group's samples among
// themselves. Within groups, every group keeps its rewards (so its advantages, up to order, and the step's amount of
// advantage noise are those of the real run) and only which sample earned which is lost.
enum class RewardShuffle { Off, Step, Group };

// Permutes rewards in place by scope with a Fisher-Yates shuffle drawn from seed (deterministic); empty rewards stay
// as they are. Throws Error for Group unless rewards.size() is a multiple of group_size >= 1.
void shuffle_rewards(std::span<double> rewards, RewardShuffle scope, int64_t group_size, uint64_t seed);

// The fraction of groups (of group_size consecutive advantages) with a non-zero advantage: the groups whose rewards
// differ, the only ones that move the policy (TRL logs the complement as frac_reward_zero_std). Throws Error unless
// advantages.size() is a positive multiple of group_size >= 1.
double mixed_group_fraction(std::span<const float> advantages, int64_t group_size);

// Sums over one call's tokens, for logs.
struct GrpoStats {
  double kl = 0.0;         // Σ k3
  double ratio = 0.0;      // Σ ρ
  int64_t clipped = 0;     // tokens whose ratio was clipped (no gradient from the ratio term)
  int64_t tokens = 0;
};

// The objective over T scored tokens, given each token's log-probability under the policy (logp), under the
// policy that sampled it (old_logp) and under the reference (ref_logp), and its sequence's advantage:
//   L = −(1/normalizer) Σ_i [min(ρ_i A_i, clip(ρ_i, 1 − ε, 1 + ε) A_i) − β k3_i],
//   ρ_i = exp(logp_i − old_i),  k3_i = exp(ref_i − logp_i) − (ref_i − logp_i) − 1 (an unbiased, positive KL estimate).
// normalizer is the number of scored tokens in the whole step (a step may span several calls). Writes
// scale_i = −∂L/∂logp_i and returns L; adds to *stats when given. Throws Error on mismatched sizes.
double grpo_objective(std::span<const float> logp, std::span<const float> old_logp, std::span<const float> ref_logp,
                      std::span<const float> advantage, const GrpoSettings& settings, double normalizer,
                      std::span<float> scale, GrpoStats* stats = nullptr);

}  // namespace whale::train
