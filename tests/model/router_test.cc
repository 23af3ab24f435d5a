#include "whale/model/router.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace whale {
namespace {

constexpr double kF32Eps = 0x1p-24;  // unit roundoff u of f32
constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// ---- An independent double-precision router, written from deepseek-spec §2.8 ------------------------------------

// The k largest entries of v, best first, ties to the lower index. `min_gap` receives the smallest non-zero
// difference between neighbours among the first k+1 ranked entries: how far the decision is from flipping.
std::vector<int> ranked(const std::vector<double>& v, int k, double& min_gap) {
  std::vector<int> order(v.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return v[a] > v[b]; });
  for (int j = 0; j + 1 < std::min<int>(k + 1, static_cast<int>(v.size())); ++j) {
    const double gap = v[order[j]] - v[order[j + 1]];
    if (gap > 0) min_gap = std::min(min_gap, gap);
  }
  order.resize(static_cast<size_t>(k));
  return order;
}

struct Routed {
  std::vector<int> ids;
  std::vector<double> weights;
  double min_gap = std::numeric_limits<double>::infinity();
};

Routed reference_route(TopkMethod method, const RouterParams& p, const std::vector<float>& logits) {
  const int n = p.n_experts;
  std::vector<double> s(static_cast<size_t>(n));
  if (p.scoring == ScoringFunc::Softmax) {
    const double mx = *std::max_element(logits.begin(), logits.end());
    double sum = 0.0;
    for (int e = 0; e < n; ++e) sum += s[e] = std::exp(logits[e] - mx);
    for (double& v : s) v /= sum;
  } else {
    for (int e = 0; e < n; ++e) s[e] = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[e])));
  }
  // noaux_tc selects by s + b; the others by s.
  std::vector<double> select = s;
  if (method == TopkMethod::NoauxTc && p.correction_bias)
    for (int e = 0; e < n; ++e) select[e] += p.correction_bias[e];

  Routed r;
  if (method != TopkMethod::Greedy) {
    const int size = n / p.n_group;
    std::vector<double> group(static_cast<size_t>(p.n_group));
    for (int g = 0; g < p.n_group; ++g) {
      std::vector<double> members(select.begin() + g * size, select.begin() + (g + 1) * size);
      std::sort(members.rbegin(), members.rend());  // descending
      group[g] = method == TopkMethod::GroupLimitedGreedy ? members[0] : members[0] + members[1];
    }
    const std::vector<int> kept = ranked(group, p.topk_group, r.min_gap);
    for (int e = 0; e < n; ++e)
      if (std::find(kept.begin(), kept.end(), e / size) == kept.end()) select[e] = kNegInf;
  }
  r.ids = ranked(select, p.top_k, r.min_gap);

  double sum = 0.0;
  for (int id : r.ids) sum += s[id];
  for (int id : r.ids) {
    if (method == TopkMethod::NoauxTc) {  // V3: normalise (if asked), always scale
      r.weights.push_back((p.norm_topk_prob ? s[id] / sum : s[id]) * p.routed_scaling_factor);
    } else {  // V2 remote code: normalise when asked and k > 1, otherwise scale
      r.weights.push_back(p.norm_topk_prob && p.top_k > 1 ? s[id] / sum : s[id] * p.routed_scaling_factor);
    }
  }
  return r;
}

// Relative error of the f32 router weights. Softmax scores: u·(|ℓ_e − max| + spread + 8) (see
// norm_activations_test.cc), ≤ u·(2·spread + 8); sigmoid scores: expf (2u), 1 + · (u), 1/· (u) = 4u. A weight is a
// score times the scale (u), or a score over the sum of k scores (twice the score error, plus 2u for the division
// and the cast). Bound: 2·score error + 3u.
double weight_rel_tol(const RouterParams& p, const std::vector<float>& logits) {
  const auto [lo, hi] = std::minmax_element(logits.begin(), logits.end());
  const double score_err = p.scoring == ScoringFunc::Softmax ? kF32Eps * (2.0 * (*hi - *lo) + 8.0) : 4 * kF32Eps;
  return 2 * score_err + 3 * kF32Eps;
}

struct Result {
  std::vector<int32_t> ids;
  std::vector<float> weights;
};

Result run(RouterFn fn, const RouterParams& p, const std::vector<float>& logits) {
  Result r{std::vector<int32_t>(static_cast<size_t>(p.top_k), -1), std::vector<float>(static_cast<size_t>(p.top_k))};
  fn(p, logits.data(), r.ids.data(), r.weights.data());
  return r;
}

void expect_matches_reference(TopkMethod method, const RouterParams& p, const std::vector<float>& logits,
                              const Result& got) {
  const Routed want = reference_route(method, p, logits);
  ASSERT_EQ(got.ids, std::vector<int32_t>(want.ids.begin(), want.ids.end()));
  const double tol = weight_rel_tol(p, logits);
  for (int k = 0; k < p.top_k; ++k)
    EXPECT_NEAR(got.weights[k], want.weights[k], tol * std::fabs(want.weights[k])) << "weight " << k;
}

// ---- greedy (V2-Lite) ------------------------------------------------------------------------------------------

TEST(RouteGreedy, SoftmaxTopK) {
  RouterParams p;
  p.n_experts = 8;
  p.top_k = 3;
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f, 0.0f, -1.0f, 2.0f, 0.5f};
  const Result r = run(route_greedy, p, logits);
  // 3.0 at 1 and 3 (tie: lower index first), then 2.0 at 2 and 6 (tie: 2).
  EXPECT_EQ(r.ids, (std::vector<int32_t>{1, 3, 2}));
  // π_e = e^{ℓ_e} / Σ e^{ℓ_j}, weight = π_e × routed_scaling_factor (1.0).
  double z = 0.0;
  for (float l : logits) z += std::exp(static_cast<double>(l));
  const double tol = weight_rel_tol(p, logits);
  EXPECT_NEAR(r.weights[0], std::exp(3.0) / z, tol * std::exp(3.0) / z);
  EXPECT_NEAR(r.weights[1], std::exp(3.0) / z, tol * std::exp(3.0) / z);
  EXPECT_NEAR(r.weights[2], std::exp(2.0) / z, tol * std::exp(2.0) / z);
  EXPECT_EQ(r.weights[0], r.weights[1]);  // equal logits, equal weights
  expect_matches_reference(TopkMethod::Greedy, p, logits, r);

  p.top_k = 4;
  EXPECT_EQ(run(route_greedy, p, logits).ids, (std::vector<int32_t>{1, 3, 2, 6}));
}

TEST(RouteGreedy, AllTiedPicksLowestIds) {
  RouterParams p;
  p.n_experts = 64;
  p.top_k = 6;
  const std::vector<float> logits(64, 0.25f);
  const Result r = run(route_greedy, p, logits);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{0, 1, 2, 3, 4, 5}));
  for (float w : r.weights) EXPECT_NEAR(w, 1.0 / 64, weight_rel_tol(p, logits) / 64);
}

TEST(RouteGreedy, ScalingAndNormalisation) {
  const std::vector<float> logits = {0.3f, -1.2f, 2.2f, 0.9f, 1.7f, -0.4f};
  RouterParams p;
  p.n_experts = 6;
  p.top_k = 2;
  p.routed_scaling_factor = 16.0f;
  const Result scaled = run(route_greedy, p, logits);
  EXPECT_EQ(scaled.ids, (std::vector<int32_t>{2, 4}));
  expect_matches_reference(TopkMethod::Greedy, p, logits, scaled);

  // norm_topk_prob: w_k = π_k / Σ π over the chosen k, which is e^{ℓ_k} / Σ_chosen e^{ℓ} (the softmax denominator
  // cancels); the V2 rule then does not scale.
  p.norm_topk_prob = true;
  const Result normed = run(route_greedy, p, logits);
  EXPECT_EQ(normed.ids, (std::vector<int32_t>{2, 4}));
  const double tol = weight_rel_tol(p, logits);
  const double w0 = 1.0 / (1.0 + std::exp(1.7 - 2.2));
  EXPECT_NEAR(normed.weights[0], w0, tol * w0);
  EXPECT_NEAR(normed.weights[1], 1.0 - w0, tol * (1.0 - w0));
  EXPECT_NEAR(normed.weights[0] + normed.weights[1], 1.0, 4 * tol);
  expect_matches_reference(TopkMethod::Greedy, p, logits, normed);

  // k = 1 never normalises (it would always give 1): it scales instead.
  p.top_k = 1;
  const Result single = run(route_greedy, p, logits);
  EXPECT_EQ(single.ids, (std::vector<int32_t>{2}));
  expect_matches_reference(TopkMethod::Greedy, p, logits, single);
  EXPECT_GT(single.weights[0], 1.0f);
}

// ---- group_limited_greedy (V2) ---------------------------------------------------------------------------------

TEST(RouteGroupLimitedGreedy, GroupMaxDecides) {
  // 12 experts in 4 groups of 3; keep 2 groups; choose 3 experts. Softmax is monotone, so ranks follow the logits.
  //   group 0: [4.0, -5, -5]    max 4.0   sum of π ∝ e^4            ≈ 54.6
  //   group 1: [3.5, 3.5, 3.5]  max 3.5   sum of π ∝ 3·e^3.5        ≈ 99.3
  //   group 2: [4.5, 0, 0]      max 4.5   sum of π ∝ e^4.5 + 2      ≈ 92.0
  //   group 3: [3.9, 3.8, -5]   max 3.9   sum of π ∝ e^3.9 + e^3.8  ≈ 94.1
  // By max: groups 2 and 0. (By sum it would be 1 and 3.) Best experts in groups {0, 2}: 6 (4.5), 0 (4.0), then
  // 7 and 8 tie at 0 → 7. Experts 9 (3.9), 10 (3.8) and 3..5 (3.5) score higher than 7 but their groups are dropped.
  RouterParams p;
  p.n_experts = 12;
  p.top_k = 3;
  p.n_group = 4;
  p.topk_group = 2;
  p.routed_scaling_factor = 16.0f;
  const std::vector<float> logits = {4.0f, -5.0f, -5.0f, 3.5f, 3.5f, 3.5f, 4.5f, 0.0f, 0.0f, 3.9f, 3.8f, -5.0f};
  const Result r = run(route_group_limited_greedy, p, logits);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{6, 0, 7}));
  // w = π × 16, with π over all 12 experts (no renormalisation, norm_topk_prob false).
  double z = 0.0;
  for (float l : logits) z += std::exp(static_cast<double>(l));
  const double tol = weight_rel_tol(p, logits);
  const double want[3] = {16 * std::exp(4.5) / z, 16 * std::exp(4.0) / z, 16 * 1.0 / z};
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(r.weights[k], want[k], tol * want[k]) << k;
  expect_matches_reference(TopkMethod::GroupLimitedGreedy, p, logits, r);

  // One group kept: only group 2's experts.
  p.topk_group = 1;
  EXPECT_EQ(run(route_group_limited_greedy, p, logits).ids, (std::vector<int32_t>{6, 7, 8}));
  // All groups kept: plain greedy.
  p.topk_group = 4;
  EXPECT_EQ(run(route_group_limited_greedy, p, logits).ids, run(route_greedy, p, logits).ids);
  EXPECT_EQ(run(route_group_limited_greedy, p, logits).ids, (std::vector<int32_t>{6, 0, 9}));
}

TEST(RouteGroupLimitedGreedy, TiedGroupsGoToLowerIndex) {
  // Groups 1 and 2 share the best score 2.0; keeping one group keeps group 1.
  RouterParams p;
  p.n_experts = 8;
  p.top_k = 2;
  p.n_group = 4;
  p.topk_group = 1;
  const std::vector<float> logits = {1.0f, 0.0f, 2.0f, -1.0f, -1.0f, 2.0f, 1.5f, 1.9f};
  const Result r = run(route_group_limited_greedy, p, logits);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{2, 3}));
  expect_matches_reference(TopkMethod::GroupLimitedGreedy, p, logits, r);
}

TEST(RouteGroupLimitedGreedy, Normalised) {
  RouterParams p;
  p.n_experts = 12;
  p.top_k = 3;
  p.n_group = 4;
  p.topk_group = 2;
  p.routed_scaling_factor = 16.0f;
  p.norm_topk_prob = true;
  const std::vector<float> logits = {4.0f, -5.0f, -5.0f, 3.5f, 3.5f, 3.5f, 4.5f, 0.0f, 0.0f, 3.9f, 3.8f, -5.0f};
  const Result r = run(route_group_limited_greedy, p, logits);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{6, 0, 7}));
  // Normalised over the chosen three: e^{ℓ} / (e^4.5 + e^4 + e^0); not scaled.
  const double z = std::exp(4.5) + std::exp(4.0) + 1.0;
  const double tol = weight_rel_tol(p, logits);
  EXPECT_NEAR(r.weights[0], std::exp(4.5) / z, tol);
  EXPECT_NEAR(r.weights[1], std::exp(4.0) / z, tol);
  EXPECT_NEAR(r.weights[2], 1.0 / z, tol);
  expect_matches_reference(TopkMethod::GroupLimitedGreedy, p, logits, r);
}

// ---- noaux_tc (V3/R1) ------------------------------------------------------------------------------------------

double sigmoid_d(double z) { return 1.0 / (1.0 + std::exp(-z)); }

RouterParams v3_like_params(const float* bias) {
  RouterParams p;
  p.n_experts = 16;
  p.top_k = 3;
  p.n_group = 4;
  p.topk_group = 2;
  p.scoring = ScoringFunc::Sigmoid;
  p.norm_topk_prob = true;
  p.routed_scaling_factor = 2.5f;
  p.correction_bias = bias;
  return p;
}

// 16 experts in 4 groups of 4. s = σ(ℓ), s' = s + b:
//   group 0: ℓ [3, -3, -3, -3], b 0          s' ≈ [.953, .047, .047, .047]  max .953  top-2 sum 1.000
//   group 1: ℓ [1, 1, -3, -3],  b 0          s' ≈ [.731, .731, .047, .047]  max .731  top-2 sum 1.462
//   group 2: ℓ [2, .5, -3, -3], b [0, .2, 0, 0]  s' ≈ [.881, .822, .047, .047]  max .881  top-2 sum 1.703
//   group 3: ℓ [0, 0, 0, 0],    b [0, -.5, -.5, -.5]  s' = [.5, 0, 0, 0]  max .5  top-2 sum .5
// Top-2 sums keep groups 2 and 1 (a max rule would keep 0 and 2). Best s' there: 8 (.881), 9 (.822 — only thanks to
// its bias; unbiased .622), then 4 and 5 tie at .731 → 4. Expert 0, the best overall (.953), is in a dropped group.
const std::vector<float> kV3Logits = {3, -3, -3, -3, 1, 1, -3, -3, 2, 0.5f, -3, -3, 0, 0, 0, 0};
const std::vector<float> kV3Bias = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0.2f, 0, 0, 0, -0.5f, -0.5f, -0.5f};

TEST(RouteNoauxTc, BiasSelectsTopTwoSumRanksGroups) {
  const RouterParams p = v3_like_params(kV3Bias.data());
  const Result r = run(route_noaux_tc, p, kV3Logits);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{8, 9, 4}));
  // Weights from the UNBIASED scores, normalised over the chosen three, × 2.5.
  const double s8 = sigmoid_d(2.0), s9 = sigmoid_d(0.5), s4 = sigmoid_d(1.0), sum = s8 + s9 + s4;
  const double want[3] = {2.5 * s8 / sum, 2.5 * s9 / sum, 2.5 * s4 / sum};
  const double tol = weight_rel_tol(p, kV3Logits);
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(r.weights[k], want[k], tol * want[k]) << k;
  EXPECT_NEAR(r.weights[0] + r.weights[1] + r.weights[2], 2.5, 2.5 * 3 * tol);
  expect_matches_reference(TopkMethod::NoauxTc, p, kV3Logits, r);
}

TEST(RouteNoauxTc, WithoutBiasTheSelectionDiffers) {
  // Same logits, no bias: 9 drops to .622 and the tie 4/5 fills both remaining places.
  const RouterParams p = v3_like_params(nullptr);
  const Result r = run(route_noaux_tc, p, kV3Logits);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{8, 4, 5}));
  expect_matches_reference(TopkMethod::NoauxTc, p, kV3Logits, r);
  // A zero bias is the same as none.
  const std::vector<float> zeros(16, 0.0f);
  EXPECT_EQ(run(route_noaux_tc, v3_like_params(zeros.data()), kV3Logits).ids, r.ids);
}

TEST(RouteNoauxTc, TopTwoSumAndMaxRankingsDiffer) {
  // One group kept. Group 0 has the single best expert, group 1 the better pair:
  //   group 0: s' ≈ [.982, .018] max .982, sum 1.000;   group 1: s' ≈ [.924, .881] max .924, sum 1.805.
  // The top-2 sum keeps group 1 → experts 2, 3 (a max rule would give 0, 1).
  RouterParams p = v3_like_params(nullptr);
  p.n_experts = 4;
  p.n_group = 2;
  p.topk_group = 1;
  p.top_k = 2;
  const std::vector<float> logits = {4.0f, -4.0f, 2.5f, 2.0f};
  const Result r = run(route_noaux_tc, p, logits);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{2, 3}));
  expect_matches_reference(TopkMethod::NoauxTc, p, logits, r);
}

TEST(RouteNoauxTc, NormTopkProbOff) {
  RouterParams p = v3_like_params(kV3Bias.data());
  p.norm_topk_prob = false;
  const Result r = run(route_noaux_tc, p, kV3Logits);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{8, 9, 4}));
  // w = σ(ℓ) × 2.5, unbiased, not normalised.
  const double want[3] = {2.5 * sigmoid_d(2.0), 2.5 * sigmoid_d(0.5), 2.5 * sigmoid_d(1.0)};
  const double tol = weight_rel_tol(p, kV3Logits);
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(r.weights[k], want[k], tol * want[k]) << k;
  expect_matches_reference(TopkMethod::NoauxTc, p, kV3Logits, r);
}

TEST(RouteNoauxTc, MaskedExpertsNeverChosenEvenWhenAllowedScoresAreNegative) {
  // A bias of −1 makes every s' negative. Experts of dropped groups are masked to −inf (official code since "fix
  // scores mask", deepseek-spec §2.8), so the kept group's experts win although their s' < 0.
  RouterParams p = v3_like_params(nullptr);
  p.n_experts = 8;
  p.n_group = 4;
  p.topk_group = 1;
  p.top_k = 2;
  const std::vector<float> bias(8, -1.0f);
  p.correction_bias = bias.data();
  const std::vector<float> logits = {0.0f, 0.1f, 3.0f, 2.0f, -1.0f, -2.0f, 1.0f, 1.0f};
  const Result r = run(route_noaux_tc, p, logits);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{2, 3}));  // group 1: sum σ(3) + σ(2) − 2 is the largest
  expect_matches_reference(TopkMethod::NoauxTc, p, logits, r);
}

TEST(RouteNoauxTc, TiesGoToLowerIndex) {
  // All logits and biases equal: groups tie (→ groups 0, 1), experts tie (→ lowest ids).
  const RouterParams p = v3_like_params(nullptr);
  const std::vector<float> logits(16, 0.7f);
  const Result r = run(route_noaux_tc, p, logits);
  EXPECT_EQ(r.ids, (std::vector<int32_t>{0, 1, 2}));
  for (float w : r.weights) EXPECT_NEAR(w, 2.5 / 3, 2.5 / 3 * weight_rel_tol(p, logits));
}

TEST(MakeRouter, OnePerTopkMethod) {
  EXPECT_EQ(make_router(TopkMethod::Greedy), &route_greedy);
  EXPECT_EQ(make_router(TopkMethod::GroupLimitedGreedy), &route_group_limited_greedy);
  EXPECT_EQ(make_router(TopkMethod::NoauxTc), &route_noaux_tc);
}

// ---- Random logits at the real sizes, against the reference ----------------------------------------------------

TEST(Routers, RandomLogitsMatchReference) {
  struct Case {
    const char* name;
    TopkMethod method;
    RouterParams p;
  };
  std::vector<Case> cases;
  {
    RouterParams p;  // V2-Lite (deepseek-spec §1.1)
    p.n_experts = 64, p.top_k = 6;
    cases.push_back({"v2-lite", TopkMethod::Greedy, p});
    p.norm_topk_prob = true;
    cases.push_back({"v2-lite normalised", TopkMethod::Greedy, p});
  }
  {
    RouterParams p;  // V2
    p.n_experts = 160, p.top_k = 6, p.n_group = 8, p.topk_group = 3, p.routed_scaling_factor = 16.0f;
    cases.push_back({"v2", TopkMethod::GroupLimitedGreedy, p});
  }
  {
    RouterParams p;  // V3
    p.n_experts = 256, p.top_k = 8, p.n_group = 8, p.topk_group = 4, p.routed_scaling_factor = 2.5f;
    p.scoring = ScoringFunc::Sigmoid;
    p.norm_topk_prob = true;
    cases.push_back({"v3", TopkMethod::NoauxTc, p});
  }
  std::mt19937 rng(31);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::uniform_real_distribution<float> small(-0.1f, 0.1f);
  for (const Case& c : cases) {
    int checked = 0;
    for (int trial = 0; trial < 300; ++trial) {
      SCOPED_TRACE(std::string(c.name) + " trial " + std::to_string(trial));
      RouterParams p = c.p;
      std::vector<float> logits(static_cast<size_t>(p.n_experts)), bias(static_cast<size_t>(p.n_experts));
      for (float& l : logits) l = normal(rng);
      for (float& b : bias) b = small(rng);
      if (c.method == TopkMethod::NoauxTc) p.correction_bias = bias.data();
      // f32 scores differ from the double ones by ~1e-7 relative; skip the rare draws where a ranking decision is
      // closer than 1e-5 and could legitimately flip.
      if (reference_route(c.method, p, logits).min_gap < 1e-5) continue;
      ++checked;
      expect_matches_reference(c.method, p, logits, run(make_router(c.method), p, logits));
      if (HasFatalFailure()) return;
    }
    EXPECT_GT(checked, 250) << c.name;
  }
}

}  // namespace
}  // namespace whale
