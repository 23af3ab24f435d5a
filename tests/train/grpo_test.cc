// GRPO's objective and its path into the model's gradients, against central differences and hand-computed values.
#include "whale/train/grpo.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "whale/core/error.h"
#include "whale/model/config.h"
#include "whale/train/ops.h"
#include "whale/train/parameters.h"
#include "whale/train/transformer.h"

namespace whale::train {
namespace {

TEST(Grpo, AdvantagesAreNormalizedWithinEachGroup) {
  const std::vector<double> rewards = {1, 0, 0, 1, 0.5, 0.5, 0.5, 0.5, 2, 0, 0, 0};
  const std::vector<float> a = group_advantages(rewards, 4);
  // Group 1: mean 0.5, unbiased sd sqrt(4 · 0.25 / 3).
  const double sd1 = std::sqrt(1.0 / 3.0);
  EXPECT_NEAR(a[0], 0.5 / (sd1 + 1e-4), 1e-5);
  EXPECT_NEAR(a[1], -0.5 / (sd1 + 1e-4), 1e-5);
  for (int i = 4; i < 8; ++i) EXPECT_EQ(a[i], 0.0f) << "equal rewards teach nothing";
  // Group 3: mean 0.5, unbiased sd sqrt((2.25 + 3 · 0.25) / 3) = 1.
  EXPECT_NEAR(a[8], 1.5 / (1.0 + 1e-4), 1e-5);
  EXPECT_NEAR(a[9], -0.5 / (1.0 + 1e-4), 1e-5);
}

TEST(Grpo, EqualRewardsGetExactlyZero) {
  // 0.1 summed eight times and divided by 8 is not 0.1 in binary; the advantage must still be exactly 0.
  const std::vector<double> rewards(8, 0.1);
  for (float a : group_advantages(rewards, 8)) EXPECT_EQ(a, 0.0f);
  const std::vector<double> tenths = {1.1, 1.1, 1.1, 1.1, 1.1, 1.1, 1.1, 1.1, 0.1, 1.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1};
  const std::vector<float> a = group_advantages(tenths, 8);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(a[i], 0.0f);
  EXPECT_GT(a[9], 0.0f);
  EXPECT_LT(a[8], 0.0f);
}

TEST(Grpo, MixedGroupFractionCountsGroupsWhoseRewardsDiffer) {
  // Groups: mixed, all equal (0.1 each, whose mean is not exactly 0.1), mixed, all equal.
  const std::vector<double> rewards = {1, 0, 0, 0, 0.1, 0.1, 0.1, 0.1, 0, 0, 1.1, 0.1, 0, 0, 0, 0};
  EXPECT_DOUBLE_EQ(mixed_group_fraction(group_advantages(rewards, 4), 4), 0.5);
  const std::vector<float> partial(6, 1.0f);
  EXPECT_THROW(mixed_group_fraction(partial, 4), Error);
}

TEST(Grpo, AdvantagesRejectPartialGroups) {
  const std::vector<double> r = {1, 0, 1};
  EXPECT_THROW(group_advantages(r, 2), Error);
  EXPECT_THROW(group_advantages(r, 1), Error);
  EXPECT_THROW(group_advantages({}, 2), Error);
}

std::vector<double> sorted(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(Grpo, GroupShuffleKeepsEachGroupsRewards) {
  std::vector<double> rewards(64);
  for (size_t i = 0; i < rewards.size(); ++i) rewards[i] = static_cast<double>(i);
  std::vector<double> shuffled = rewards;
  shuffle_rewards(shuffled, RewardShuffle::Group, 8, 42);
  EXPECT_NE(shuffled, rewards) << "a shuffle of 8 groups of 8 distinct values left every one in place";
  for (size_t g = 0; g < 64; g += 8) {
    const std::vector<double> before(rewards.begin() + g, rewards.begin() + g + 8);
    const std::vector<double> after(shuffled.begin() + g, shuffled.begin() + g + 8);
    EXPECT_EQ(sorted(after), before) << "group at " << g;
  }
  std::vector<double> again = rewards;
  shuffle_rewards(again, RewardShuffle::Group, 8, 42);
  EXPECT_EQ(again, shuffled) << "the same seed gives the same permutation";
}

TEST(Grpo, StepShuffleMixesGroupsAndOffLeavesRewards) {
  std::vector<double> rewards(64);
  for (size_t i = 0; i < rewards.size(); ++i) rewards[i] = static_cast<double>(i);
  std::vector<double> shuffled = rewards;
  shuffle_rewards(shuffled, RewardShuffle::Step, 8, 42);
  EXPECT_EQ(sorted(shuffled), rewards);
  int crossed = 0;  // values that left their group
  for (size_t i = 0; i < shuffled.size(); ++i) crossed += static_cast<size_t>(shuffled[i]) / 8 != i / 8;
  EXPECT_GT(crossed, 32);
  std::vector<double> off = rewards;
  shuffle_rewards(off, RewardShuffle::Off, 8, 42);
  EXPECT_EQ(off, rewards);
  std::vector<double> partial(10, 1.0);
  EXPECT_THROW(shuffle_rewards(partial, RewardShuffle::Group, 8, 1), Error);
}

// L as a function of logp alone (scales discarded).
double objective_at(const std::vector<float>& logp, const std::vector<float>& old, const std::vector<float>& ref,
                    const std::vector<float>& adv, const GrpoSettings& s) {
  std::vector<float> scale(logp.size());
  return grpo_objective(logp, old, ref, adv, s, 7.0, scale);
}

TEST(Grpo, ScalesAreTheNegativeGradientOfTheObjective) {
  // Ratios inside and outside the clip range, positive and negative advantages, β on and off.
  const std::vector<float> old = {-1.0f, -2.0f, -0.5f, -3.0f, -1.5f, -0.7f};
  const std::vector<float> logp = {-1.0f, -1.5f, -0.9f, -3.1f, -1.2f, -1.4f};  // ρ = 1, 1.65, 0.67, 0.90, 1.35, 0.50
  const std::vector<float> ref = {-1.2f, -1.8f, -0.6f, -2.0f, -1.5f, -0.3f};
  const std::vector<float> adv = {0.8f, 1.2f, 1.0f, -0.6f, -1.1f, -0.9f};
  for (double beta : {0.0, 0.04, 0.5}) {
    const GrpoSettings s{0.2, beta};
    std::vector<float> scale(logp.size());
    GrpoStats stats;
    grpo_objective(logp, old, ref, adv, s, 7.0, scale, &stats);
    EXPECT_EQ(stats.tokens, 6);
    EXPECT_EQ(stats.clipped, 2) << "ρ = 1.65 with A > 0 and ρ = 0.50 with A < 0 are clipped";
    for (size_t i = 0; i < logp.size(); ++i) {
      const float h = 1e-3f;
      std::vector<float> up = logp, down = logp;
      up[i] += h;
      down[i] -= h;
      const double numeric = (objective_at(up, old, ref, adv, s) - objective_at(down, old, ref, adv, s)) / (2 * h);
      EXPECT_NEAR(-scale[i], numeric, 2e-4 + 2e-3 * std::abs(numeric)) << "token " << i << " beta " << beta;
    }
  }
}

TEST(Grpo, OnPolicyWithoutKlIsTheAdvantageWeightedLikelihood) {
  // ρ = 1 and β = 0: L = −Σ A_i / n and ∂L/∂logp_i = −A_i / n, the REINFORCE form GRPO reduces to on-policy.
  const std::vector<float> lp = {-0.3f, -2.0f, -1.1f};
  const std::vector<float> adv = {1.5f, -0.5f, 0.25f};
  std::vector<float> scale(3);
  const double L = grpo_objective(lp, lp, lp, adv, {0.2, 0.0}, 4.0, scale);
  EXPECT_NEAR(L, -(1.5 - 0.5 + 0.25) / 4.0, 1e-7);
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(scale[i], adv[i] / 4.0, 1e-7);
}

TEST(Grpo, RejectsMismatchedSizes) {
  const std::vector<float> a = {0.0f, 0.0f}, b = {0.0f};
  std::vector<float> scale(2);
  EXPECT_THROW(grpo_objective(a, a, b, a, {}, 1.0, scale), Error);
  EXPECT_THROW(grpo_objective(a, a, a, a, {}, 0.0, scale), Error);
}

TEST(Grpo, ScoredLogProbsGradientMatchesCentralDifferences) {
  const int64_t N = 4, V = 7;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.5f);
  std::vector<float> logits(N * V);
  for (float& v : logits) v = nd(rng);
  const std::vector<int32_t> target = {3, -1, 0, 6};  // row 1 is not scored
  const std::vector<float> old = {-1.5f, -2.5f, -1.0f}, ref = {-2.0f, -1.0f, -1.7f}, adv = {1.0f, -0.7f, 0.4f};
  const GrpoSettings s{0.2, 0.1};
  const TokenObjective objective = [&](std::span<const float> lp, std::span<float> scale) {
    return grpo_objective(lp, old, ref, adv, s, 3.0, scale);
  };
  auto value = [&](std::vector<float> l) {
    return scored_log_probs(nullptr, l.data(), target.data(), N, V, objective, false);
  };
  std::vector<float> grad = logits;
  const double L = scored_log_probs(nullptr, grad.data(), target.data(), N, V, objective, true, 2.0f);
  EXPECT_DOUBLE_EQ(L, value(logits));
  for (int64_t v = 0; v < V; ++v) EXPECT_EQ(grad[1 * V + v], 0.0f) << "unscored row";
  for (int64_t i = 0; i < N * V; ++i) {
    if (i / V == 1) continue;
    std::vector<float> up = logits, down = logits;
    const float h = 1e-2f;
    up[i] += h;
    down[i] -= h;
    const double numeric = 2.0 * (value(up) - value(down)) / (2 * h);
    EXPECT_NEAR(grad[i], numeric, 1e-3 + 1e-2 * std::abs(numeric)) << "logit " << i;
  }
}

ModelConfig tiny_config() {
  const nlohmann::json j = {
      {"architectures", {"DeepseekV2ForCausalLM"}}, {"model_type", "deepseek_v2"}, {"hidden_size", 32}, {"num_hidden_layers", 2},
      {"num_attention_heads", 2}, {"num_key_value_heads", 2}, {"q_lora_rank", nullptr}, {"kv_lora_rank", 16},
      {"qk_nope_head_dim", 8}, {"qk_rope_head_dim", 8}, {"v_head_dim", 8}, {"n_routed_experts", 4},
      {"n_shared_experts", 1}, {"num_experts_per_tok", 2}, {"n_group", 1}, {"topk_group", 1},
      {"routed_scaling_factor", 1.0}, {"scoring_func", "softmax"}, {"topk_method", "greedy"},
      {"norm_topk_prob", false}, {"first_k_dense_replace", 1}, {"moe_layer_freq", 1}, {"moe_intermediate_size", 16},
      {"intermediate_size", 48}, {"hidden_act", "silu"}, {"rope_theta", 10000}, {"max_position_embeddings", 256},
      {"rms_norm_eps", 1e-6}, {"vocab_size", 40}, {"tie_word_embeddings", false}, {"bos_token_id", 0},
      {"eos_token_id", 1}};
  return parse_model_config(j, "tiny");
}

TEST(Grpo, MeanLikelihoodObjectiveGivesTheCrossEntropyGradients) {
  // run_objective with L = −(1/N) Σ logp over every position is the training loss run() computes: same value, same
  // gradients. And unscored positions contribute nothing: scoring half the positions equals scoring them with 0.
  const ModelConfig config = tiny_config();
  ParameterSet params(config);
  params.init_random(3, 0.1);
  ThreadPool pool(2);
  Transformer model(params, pool);
  const int64_t B = 2, T = 6;
  std::vector<int32_t> windows;
  for (int64_t i = 0; i < B * (T + 1); ++i) windows.push_back(static_cast<int32_t>((i * 13 + 5) % 40));
  params.zero_grads();
  const BatchLoss ce = model.run(windows, B, T, {}, true);
  const std::vector<float> g_ce = params.grads();

  const std::vector<uint8_t> all(B * T, 1);
  const TokenObjective mean_nll = [&](std::span<const float> lp, std::span<float> scale) {
    double sum = 0.0;
    for (size_t i = 0; i < lp.size(); ++i) {
      sum -= lp[i];
      scale[i] = 1.0f / static_cast<float>(B * T);
    }
    return sum / static_cast<double>(B * T);
  };
  params.zero_grads();
  const BatchLoss ob = model.run_objective(windows, B, T, all, mean_nll, {}, true);
  EXPECT_NEAR(ob.main, ce.main, 1e-5 * std::abs(ce.main));
  EXPECT_EQ(ob.main_tokens, B * T);
  double max_diff = 0.0, max_g = 0.0;
  for (size_t i = 0; i < g_ce.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::abs(params.grads()[i] - g_ce[i])));
    max_g = std::max(max_g, static_cast<double>(std::abs(g_ce[i])));
  }
  EXPECT_GT(max_g, 0.0);
  EXPECT_LE(max_diff, 1e-5 * max_g);

  // Half the positions scored vs all scored with zero weight on the other half.
  std::vector<uint8_t> half(B * T, 0);
  for (int64_t n = 0; n < B * T; n += 2) half[n] = 1;
  const TokenObjective unit = [](std::span<const float> lp, std::span<float> scale) {
    std::fill(scale.begin(), scale.end(), 1.0f);
    return 0.0;
  };
  params.zero_grads();
  const BatchLoss h = model.run_objective(windows, B, T, half, unit, {}, true);
  EXPECT_EQ(h.main_tokens, B * T / 2);
  const std::vector<float> g_half = params.grads();
  int64_t seen = 0;
  const TokenObjective masked = [&](std::span<const float> lp, std::span<float> scale) {
    for (size_t i = 0; i < scale.size(); ++i) scale[i] = (seen++ % 2 == 0) ? 1.0f : 0.0f;
    return 0.0;
  };
  params.zero_grads();
  model.run_objective(windows, B, T, all, masked, {}, true);
  for (size_t i = 0; i < g_half.size(); ++i) ASSERT_NEAR(params.grads()[i], g_half[i], 1e-6) << i;

  EXPECT_THROW(model.run_objective(windows, B, T, std::vector<uint8_t>(3, 1), unit, {}, false), Error);
}

}  // namespace
}  // namespace whale::train
