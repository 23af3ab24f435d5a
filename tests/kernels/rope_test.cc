#include "whale/kernels/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <optional>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "whale/model/config.h"

namespace whale {
namespace {

constexpr double kF32Eps = 0x1p-24;  // unit roundoff u of f32
constexpr double kF64Eps = 0x1p-53;

// DeepSeek's YaRN parameters, identical for V3, V2 and V2-Lite (deepseek-spec §1.1).
RopeScaling deepseek_yarn() {
  RopeScaling y;
  y.factor = 40.0;
  y.original_max_position_embeddings = 4096;
  y.beta_fast = 32.0;
  y.beta_slow = 1.0;
  y.mscale = 1.0;
  y.mscale_all_dim = 1.0;
  return y;
}

// Adjusted inverse frequencies ω_i, d = 64, θ = 10000, s = 40, L0 = 4096, β = 32/1: the table of deepseek-spec §2.6,
// printed to 7 significant digits (so each entry is within 0.5e-6 relative of the true value; 1e-6 tolerance).
TEST(Rope, YarnFrequenciesMatchSpecTable) {
  const std::vector<double> table = {
      1.0,          0.7498942,    0.5623413,    0.4216965,    0.3162278,    0.2371374,    0.1778279,
      0.1333521,    0.1,          0.07498942,   0.05623413,   3.900693e-02, 2.687936e-02, 1.837815e-02,
      1.244796e-02, 8.334509e-03, 5.500000e-03, 3.561997e-03, 2.249365e-03, 1.370514e-03, 7.905694e-04,
      4.149904e-04, 1.778279e-04,
  };
  const std::vector<double> omega = rope_inverse_frequencies(64, 10000.0, deepseek_yarn());
  ASSERT_EQ(omega.size(), 32u);
  for (size_t i = 0; i < table.size(); ++i) EXPECT_NEAR(omega[i], table[i], 1e-6 * table[i]) << "i " << i;
  // 23–31: ω_i^base / 40, with the spec's endpoints 23: 3.333804e-05 and 31: 3.333804e-06.
  for (int i = 23; i < 32; ++i) {
    const double expected = std::pow(10000.0, -2.0 * i / 64.0) / 40.0;
    EXPECT_NEAR(omega[i], expected, 1e-12 * expected) << "i " << i;
  }
  EXPECT_NEAR(omega[23], 3.333804e-05, 1e-6 * 3.333804e-05);
  EXPECT_NEAR(omega[31], 3.333804e-06, 1e-6 * 3.333804e-06);
}

TEST(Rope, YarnRampFromTheFormulas) {
  // The same table recomputed from the §2.6 formulas, for a second parameter set too (not DeepSeek's), so the
  // ramp's bounds are exercised away from the one table: corr(r) = d·ln(L0 / (2π r)) / (2 ln θ),
  // low = max(floor(corr(β_fast)), 0), high = min(ceil(corr(β_slow)), d − 1).
  struct Case {
    int dim;
    double theta, factor, beta_fast, beta_slow;
    int original;
  };
  for (const Case& c : {Case{64, 10000.0, 40.0, 32.0, 1.0, 4096}, Case{128, 500000.0, 8.0, 32.0, 1.0, 8192},
                        Case{16, 10000.0, 4.0, 64.0, 2.0, 2048}}) {
    RopeScaling y;
    y.factor = c.factor;
    y.original_max_position_embeddings = c.original;
    y.beta_fast = c.beta_fast;
    y.beta_slow = c.beta_slow;
    const auto corr = [&](double r) {
      return c.dim * std::log(c.original / (2 * std::numbers::pi * r)) / (2 * std::log(c.theta));
    };
    const double low = std::max(std::floor(corr(c.beta_fast)), 0.0);
    double high = std::min(std::ceil(corr(c.beta_slow)), c.dim - 1.0);
    if (low == high) high += 0.001;
    const std::vector<double> omega = rope_inverse_frequencies(c.dim, c.theta, y);
    ASSERT_EQ(omega.size(), static_cast<size_t>(c.dim / 2));
    for (int i = 0; i < c.dim / 2; ++i) {
      const double base = std::pow(c.theta, -2.0 * i / c.dim);
      const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
      const double expected = base * (1 - ramp) + base / c.factor * ramp;
      EXPECT_NEAR(omega[i], expected, 1e-12 * expected) << "dim " << c.dim << " i " << i;
    }
  }
  // DeepSeek's bounds (§2.6): corr(32) = 10.47 → low = 10, corr(1) = 22.51 → high = 23.
  const std::vector<double> omega = rope_inverse_frequencies(64, 10000.0, deepseek_yarn());
  EXPECT_DOUBLE_EQ(omega[10], std::pow(10000.0, -20.0 / 64));       // i ≤ low: unchanged
  EXPECT_DOUBLE_EQ(omega[23], std::pow(10000.0, -46.0 / 64) / 40);  // i ≥ high: divided by s
}

TEST(Rope, NoScalingIsThetaPower) {
  for (int dim : {2, 8, 64, 128}) {
    RopeScaling unity = deepseek_yarn();
    unity.factor = 1.0;  // factor 1: YaRN changes nothing
    for (const std::optional<RopeScaling>& scaling : {std::optional<RopeScaling>{}, std::optional{unity}}) {
      const std::vector<double> omega = rope_inverse_frequencies(dim, 10000.0, scaling);
      ASSERT_EQ(omega.size(), static_cast<size_t>(dim / 2));
      for (int i = 0; i < dim / 2; ++i) {
        const double expected = std::pow(10000.0, -2.0 * i / dim);
        EXPECT_NEAR(omega[i], expected, 4 * kF64Eps * expected) << "dim " << dim << " i " << i;
      }
    }
  }
}

// y[2i] = x[2i]·cos(pω_i) − x[2i+1]·sin(pω_i), y[2i+1] = x[2i]·sin(pω_i) + x[2i+1]·cos(pω_i) (deepseek-spec §2.5),
// evaluated in double here. The kernel's only f32 step is the final rounding (≤ u·|y| ≤ u·(|a| + |b|)); both sides
// form the angle p·ω in double, which may differ by the libm's cos/sin error (a few 2^-53 of 1) plus 2^-53·p·ω from
// the product if evaluated differently: tolerance u·(|a|+|b|) + 8·2^-53·(1 + p·ω)·(|a|+|b|).
TEST(Rope, InterleavedRotationMatchesFormula) {
  std::mt19937 rng(21);
  for (const std::vector<double>& omega :
       {rope_inverse_frequencies(64, 10000.0, deepseek_yarn()), rope_inverse_frequencies(64, 10000.0, std::nullopt),
        std::vector<double>{0.5, 1e-3}, std::vector<double>{1.0}}) {
    for (int64_t pos : {0, 1, 2, 7, 100, 4095, 4096, 65537, 163839}) {
      std::vector<float> x(2 * omega.size());
      for (float& v : x) v = std::uniform_real_distribution<float>(-4.0f, 4.0f)(rng);
      std::vector<float> y = x;
      rope_interleaved(y.data(), omega, pos);
      for (size_t i = 0; i < omega.size(); ++i) {
        const double a = x[2 * i], b = x[2 * i + 1], angle = static_cast<double>(pos) * omega[i];
        const double e0 = a * std::cos(angle) - b * std::sin(angle), e1 = a * std::sin(angle) + b * std::cos(angle);
        const double tol = (kF32Eps + 8 * kF64Eps * (1 + angle)) * (std::fabs(a) + std::fabs(b));
        EXPECT_NEAR(y[2 * i], e0, tol) << "pos " << pos << " pair " << i;
        EXPECT_NEAR(y[2 * i + 1], e1, tol) << "pos " << pos << " pair " << i;
      }
    }
  }
}

TEST(Rope, PositionZeroIsIdentityAndRotationKeepsLength) {
  const std::vector<double> omega = rope_inverse_frequencies(64, 10000.0, deepseek_yarn());
  std::mt19937 rng(22);
  std::vector<float> x(64);
  for (float& v : x) v = std::uniform_real_distribution<float>(-4.0f, 4.0f)(rng);
  std::vector<float> y = x;
  rope_interleaved(y.data(), omega, 0);
  EXPECT_EQ(y, x);
  rope_interleaved(y.data(), omega, 12345);
  for (size_t i = 0; i < 32; ++i) {
    const double before = std::hypot(x[2 * i], x[2 * i + 1]), after = std::hypot(y[2 * i], y[2 * i + 1]);
    EXPECT_NEAR(after, before, 4 * kF32Eps * before) << "pair " << i;
  }
}

TEST(Rope, HandComputedQuarterTurn) {
  // ω = π/2, p = 1: (a, b) → (−b, a).
  std::vector<float> x = {3.0f, 5.0f};
  rope_interleaved(x.data(), {std::numbers::pi / 2}, 1);
  EXPECT_NEAR(x[0], -5.0, 1e-6);
  EXPECT_NEAR(x[1], 3.0, 1e-6);
}

// σ = qk_head_dim^(−1/2) · mscale(s, mscale_all_dim)², mscale(s, m) = 0.1·m·ln s + 1 (deepseek-spec §2.4, §2.6):
// 0.1352338 for V3/R1 (mscale_all_dim 1.0) and 0.1147214 for V2/V2-Lite (0.707), to the 7 decimals printed.
TEST(Rope, SoftmaxScale) {
  ModelConfig c;
  c.qk_nope_head_dim = 128;
  c.qk_rope_head_dim = 64;
  ASSERT_EQ(c.qk_head_dim(), 192);
  EXPECT_NEAR(c.softmax_scale(), 1.0 / std::sqrt(192.0), 1e-15);  // no rope_scaling: plain 1/sqrt(d)

  c.rope_scaling = deepseek_yarn();
  EXPECT_NEAR(c.softmax_scale(), 0.1352338, 5e-8);
  c.rope_scaling->mscale_all_dim = 0.707;
  c.rope_scaling->mscale = 0.707;
  EXPECT_NEAR(c.softmax_scale(), 0.1147214, 5e-8);

  c.rope_scaling->factor = 1.0;  // no extension: mscale = 1
  EXPECT_NEAR(c.softmax_scale(), 1.0 / std::sqrt(192.0), 1e-15);
}

}  // namespace
}  // namespace whale
