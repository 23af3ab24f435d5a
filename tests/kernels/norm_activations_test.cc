#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include "whale/core/dtype.h"
#include "whale/kernels/activations.h"
#include "whale/kernels/norm.h"
#include "instruction_sets.h"

namespace whale {
namespace {

constexpr double kF32Eps = 0x1p-24;  // unit roundoff u of f32
constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> uniform(int64_t n, float lo, float hi, std::mt19937& rng) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = std::uniform_real_distribution<float>(lo, hi)(rng);
  return v;
}

// ---- RMSNorm: y = w ⊙ x / sqrt(mean(x²) + ε) (deepseek-spec §2.2) ---------------------------------------------

std::vector<double> rmsnorm_double(const std::vector<float>& x, const std::vector<float>& w, double eps) {
  double sum_sq = 0.0;
  for (float v : x) sum_sq += static_cast<double>(v) * v;
  const double r = 1.0 / std::sqrt(sum_sq / static_cast<double>(x.size()) + eps);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = static_cast<double>(w[i]) * x[i] * r;
  return y;
}

// The statistic is accumulated in double (error ~n·2^-53, negligible); then three f32 roundings: the reciprocal
// root, x·r and w·(x·r), each ≤ u relative, so |y − exact| ≤ ((1+u)³ − 1)·|exact| < 4u·|exact|. ε is an f32
// argument, so the double reference uses the same f32 value of it.
constexpr double kRmsnormRelTol = 4 * kF32Eps;

void check_rmsnorm(const std::vector<float>& x, const std::vector<float>& w, float eps, bool in_place) {
  const std::vector<double> expected = rmsnorm_double(x, w, eps);
  std::vector<float> out = x;
  if (in_place) {
    rmsnorm(out.data(), w.data(), static_cast<int64_t>(x.size()), eps, out.data());
  } else {
    rmsnorm(x.data(), w.data(), static_cast<int64_t>(x.size()), eps, out.data());
  }
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_LE(std::fabs(out[i] - expected[i]), kRmsnormRelTol * std::fabs(expected[i]))
        << "n " << x.size() << " i " << i << " in_place " << in_place;
}

TEST(RmsNorm, MatchesDoubleFormula) {
  std::mt19937 rng(11);
  for (int64_t n : {1, 2, 3, 7, 16, 17, 512, 2048, 7168})
    for (bool in_place : {false, true}) {
      const std::vector<float> x = uniform(n, -3.0f, 3.0f, rng), w = uniform(n, -2.0f, 2.0f, rng);
      check_rmsnorm(x, w, 1e-6f, in_place);
    }
}

TEST(RmsNorm, ExtremeMagnitudes) {
  std::mt19937 rng(12);
  // Large values: x² overflows f32 (1e30² > FLT_MAX) but not the double accumulator.
  std::vector<float> big = uniform(64, 1e29f, 1e30f, rng), w = uniform(64, 0.5f, 1.5f, rng);
  check_rmsnorm(big, w, 1e-6f, false);
  // Tiny values: ε dominates mean(x²) and the output shrinks accordingly.
  check_rmsnorm(uniform(64, -1e-5f, 1e-5f, rng), w, 1e-6f, false);
  // All zeros: output is exactly 0.
  std::vector<float> zeros(64, 0.0f), out(64, 1.0f);
  rmsnorm(zeros.data(), w.data(), 64, 1e-6f, out.data());
  for (float v : out) EXPECT_EQ(v, 0.0f);
}

TEST(RmsNorm, HandComputed) {
  // x = [3, 4]: mean(x²) = 12.5; with ε = 0 → y = w·x / sqrt(12.5).
  const float x[2] = {3.0f, 4.0f}, w[2] = {1.0f, 2.0f};
  float y[2];
  rmsnorm(x, w, 2, 0.0f, y);
  EXPECT_NEAR(y[0], 3.0 / std::sqrt(12.5), kRmsnormRelTol * 3.0 / std::sqrt(12.5));
  EXPECT_NEAR(y[1], 8.0 / std::sqrt(12.5), kRmsnormRelTol * 8.0 / std::sqrt(12.5));
}

// ---- Softmax -----------------------------------------------------------------------------------------------------

std::vector<double> softmax_double(const std::vector<float>& x) {
  double mx = -std::numeric_limits<double>::infinity();
  for (float v : x) mx = std::max(mx, static_cast<double>(v));
  std::vector<double> p(x.size());
  double sum = 0.0;
  for (size_t i = 0; i < x.size(); ++i) sum += p[i] = std::exp(static_cast<double>(x[i]) - mx);
  for (double& v : p) v /= sum;
  return p;
}

// Error of p_i = exp(x_i − m) / Σ_j exp(x_j − m) in f32 (m = max): the subtraction rounds by ≤ u·|x_i − m|, which
// exp turns into a relative error of the same size; exp itself is within 2 ulp (glibc expf: < 1 ulp, so 2u);
// the double sum of f32 terms inherits the largest term error, u·(max_j |x_j − m| + 2); 1/sum rounds to f32 (u) and
// the final product rounds (u). So |p_i − exact| ≤ u·(|x_i − m| + max_j |x_j − m| + 6)·exact_i, and we allow 8.
double softmax_tol(const std::vector<float>& x, size_t i, double exact) {
  float mx = -kInf;
  for (float v : x) mx = std::max(mx, v);
  double spread = 0.0;
  for (float v : x)
    if (v != -kInf) spread = std::max(spread, static_cast<double>(mx) - v);
  return kF32Eps * (static_cast<double>(mx) - x[i] + spread + 8.0) * exact + std::numeric_limits<float>::denorm_min();
}

void check_softmax(const std::vector<float>& x) {
  const std::vector<double> expected = softmax_double(x);
  std::vector<float> p = x;
  softmax_inplace(p.data(), static_cast<int64_t>(p.size()));
  double sum = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    sum += p[i];
    if (x[i] == -kInf) {
      ASSERT_EQ(p[i], 0.0f) << "-inf entry " << i;
      continue;
    }
    ASSERT_LE(std::fabs(p[i] - expected[i]), softmax_tol(x, i, expected[i])) << "n " << x.size() << " i " << i;
  }
  // Σ p_i is 1 within the sum of the per-entry bounds (≤ u·(2·spread + 8)) plus n roundings of the check's sum.
  EXPECT_NEAR(sum, 1.0, 1e-4);
}

TEST(Softmax, MatchesDoubleFormula) {
  std::mt19937 rng(13);
  for (int64_t n : {1, 2, 3, 5, 8, 64, 160, 1000})
    for (float range : {0.1f, 5.0f, 30.0f}) check_softmax(uniform(n, -range, range, rng));
}

TEST(Softmax, LargeLogitsDoNotOverflow) {
  // exp(1000) overflows; subtracting the max first keeps every term ≤ 1.
  check_softmax({1000.0f, 1001.0f, 999.5f, -1000.0f});
  check_softmax({-1e30f, -1e30f});  // equal entries: 1/2 each
  std::vector<float> p = {88.0f, 89.0f, 90.0f};
  softmax_inplace(p.data(), 3);
  for (float v : p) EXPECT_TRUE(std::isfinite(v));
}

TEST(Softmax, NegativeInfinityEntriesBecomeZero) {
  // Masked entries (router group masking, causal attention) are -inf and must get exactly 0.
  check_softmax({-kInf, 1.0f, 2.0f, -kInf, 0.5f});
  check_softmax({3.0f, -kInf});
  check_softmax({-kInf, -kInf, -kInf, 7.0f});  // one finite entry takes all the mass: exactly 1
  std::vector<float> p = {-kInf, -kInf, -kInf, 7.0f};
  softmax_inplace(p.data(), 4);
  EXPECT_EQ(p[3], 1.0f);
}

TEST(Softmax, SingleEntryIsOne) {
  for (float v : {-50.0f, 0.0f, 3.5f, 1e20f}) {
    float p = v;
    softmax_inplace(&p, 1);
    EXPECT_EQ(p, 1.0f) << v;
  }
}

TEST(Softmax, HandComputed) {
  // softmax(0, ln 3) = (1/4, 3/4).
  std::vector<float> p = {0.0f, static_cast<float>(std::log(3.0))};
  softmax_inplace(p.data(), 2);
  EXPECT_NEAR(p[0], 0.25, 1e-6);
  EXPECT_NEAR(p[1], 0.75, 1e-6);
}

// ---- The sampler's vocabulary kernels: exp_shifted_sum and first_argmax ----------------------------------------

// Every w[i] within 4 ulp of e^(z[i] − shift) (expl of the difference rounded to double, as the kernel rounds it), −inf
// and far-below entries exactly 0, and the sum within n ulp of the reference sum, on every instruction set and at
// lengths around the vector widths.
TEST(ExpShiftedSum, MatchesLongDoubleExp) {
  std::mt19937 rng(21);
  constexpr double kUlp = 0x1p-52;
  for (int64_t target : supported_targets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (int64_t n : {1, 2, 7, 8, 9, 17, 1000, 129280}) {
      std::vector<double> z(static_cast<size_t>(n));
      for (double& v : z) v = std::uniform_real_distribution<double>(-60.0, 20.0)(rng);
      if (n > 1) z[0] = -std::numeric_limits<double>::infinity();
      if (n > 3) z[3] = -800.0;  // e^(-820) underflows to 0
      const double shift = *std::max_element(z.begin(), z.end());
      std::vector<double> w(z.size());
      const double sum = exp_shifted_sum(z.data(), shift, w.data(), n);
      long double want_sum = 0;
      for (int64_t i = 0; i < n; ++i) {
        const long double want = std::exp(static_cast<long double>(z[i] - shift));  // the kernel's rounded difference
        want_sum += want;
        if ((i == 0 && n > 1) || i == 3) {
          ASSERT_EQ(w[i], 0.0) << "n " << n << " i " << i;
          continue;
        }
        ASSERT_LE(std::fabs(static_cast<long double>(w[i]) - want), 4 * kUlp * want)
            << hwy::TargetName(target) << " n " << n << " i " << i << " z " << z[i];
      }
      EXPECT_LE(std::fabs(static_cast<long double>(sum) - want_sum), (n + 4) * kUlp * want_sum) << "n " << n;
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// The maximum's weight is exactly 1 (the sampler's min_p compares weights with min_p on that basis), in the vector
// part and the tail, on every instruction set.
TEST(ExpShiftedSum, ShiftItselfGivesExactlyOne) {
  for (int64_t target : supported_targets()) {
    hwy::SetSupportedTargetsForTest(target);
    std::vector<double> z(37, 3.25), w(37);
    EXPECT_EQ(exp_shifted_sum(z.data(), 3.25, w.data(), 37), 37.0) << hwy::TargetName(target);
    for (double v : w) ASSERT_EQ(v, 1.0) << hwy::TargetName(target);
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(ExpShiftedSum, HandComputed) {
  // e^(0 − ln 2) = 1/2, e^0 = 1, e^(−inf) = 0: sum 1.5.
  const double z[] = {-std::log(2.0), 0.0, -std::numeric_limits<double>::infinity()};
  double w[3];
  EXPECT_NEAR(exp_shifted_sum(z, 0.0, w, 3), 1.5, 1e-15);
  EXPECT_NEAR(w[0], 0.5, 1e-16);
  EXPECT_EQ(w[1], 1.0);
  EXPECT_EQ(w[2], 0.0);
}

// The first index of the maximum, against a scalar scan: ties to the lowest index, the maximum in the vector part,
// in the tail, first or last, −inf entries, and all entries equal; in f64 (the sampler's) and f32 (logits).
template <typename T>
void ExpectFirstArgmaxMatchesScalarScan() {
  std::mt19937 rng(22);
  const T ninf = -std::numeric_limits<T>::infinity();
  for (int64_t target : supported_targets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (int64_t n : {1, 2, 5, 8, 9, 16, 17, 31, 33, 1000}) {
      for (int trial = 0; trial < 20; ++trial) {
        std::vector<T> z(static_cast<size_t>(n));
        // Few distinct values, so ties are common.
        for (T& v : z) v = static_cast<T>(std::uniform_int_distribution<int>(-3, 3)(rng));
        if (trial % 5 == 1) for (T& v : z) v = 2;                        // all equal: index 0
        if (trial % 5 == 2) z.back() = 10;                                // the maximum last
        if (trial % 5 == 3) for (size_t i = 1; i < z.size(); ++i) z[i] = ninf;  // only the first finite
        if (trial % 5 == 4) z[0] = ninf;
        size_t want = 0;
        for (size_t i = 1; i < z.size(); ++i)
          if (z[i] > z[want]) want = i;
        ASSERT_EQ(first_argmax(z.data(), n), static_cast<int64_t>(want))
            << hwy::TargetName(target) << " n " << n << " trial " << trial;
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}
TEST(FirstArgmax, MatchesScalarScan) { ExpectFirstArgmaxMatchesScalarScan<double>(); }
TEST(FirstArgmax, F32MatchesScalarScan) { ExpectFirstArgmaxMatchesScalarScan<float>(); }

// ---- SwiGLU: silu(g)·u, silu(z) = z·σ(z) = z / (1 + e^{−z}) (deepseek-spec §2.3) -------------------------------

// f32 steps: e^{−z} (≤ 2u with glibc expf; −z is exact), 1 + e^{−z} (u), 1/(·) (u), z·σ (u), ·up (u): at most
// 6 roundings of relative size u, all multiplicative (the sum 1 + e^{−z} has positive terms, so no cancellation):
// |y − exact| ≤ ((1+u)^6·(1+2u) − 1)·|exact| < 9u·|exact|.
constexpr double kSwigluRelTol = 9 * kF32Eps;

double silu_double(double z) { return z / (1.0 + std::exp(-z)); }

TEST(SwiGLU, MatchesDoubleFormula) {
  std::mt19937 rng(14);
  for (int64_t n : {1, 2, 7, 64, 1408}) {
    std::vector<float> gate = uniform(n, -20.0f, 20.0f, rng);
    const std::vector<float> up = uniform(n, -3.0f, 3.0f, rng), g0 = gate;
    swiglu_inplace(gate.data(), up.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double expected = silu_double(g0[i]) * up[i];
      ASSERT_LE(std::fabs(gate[i] - expected), kSwigluRelTol * std::fabs(expected)) << "n " << n << " i " << i;
    }
  }
}

// The backward (training): du = dh·silu(g), dg = dh·u·σ(g)(1 + g(1 − σ(g))), against the double formula. The SIMD
// Exp and division add a few roundings to the forward's; σ'·(1 + g(1−σ)) has positive factors for g ≥ −1 but can
// cancel below (1 + g(1−σ) crosses 0 near g = −1.28), so dg is compared with an absolute floor there.
TEST(SwiGLU, BackwardMatchesDoubleFormula) {
  std::mt19937 rng(15);
  for (int64_t n : {1, 5, 16, 33, 1408}) {
    const std::vector<float> g = uniform(n, -20.0f, 20.0f, rng), u = uniform(n, -3.0f, 3.0f, rng),
                             dh = uniform(n, -2.0f, 2.0f, rng);
    std::vector<float> dg(n), du(n);
    swiglu_backward(g.data(), u.data(), dh.data(), dg.data(), du.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double s = 1.0 / (1.0 + std::exp(-static_cast<double>(g[i])));
      const double want_du = dh[i] * g[i] * s;
      const double want_dg = static_cast<double>(dh[i]) * u[i] * s * (1.0 + g[i] * (1.0 - s));
      ASSERT_LE(std::fabs(du[i] - want_du), 12 * kF32Eps * std::fabs(want_du) + 1e-37) << "n " << n << " i " << i;
      ASSERT_LE(std::fabs(dg[i] - want_dg), 16 * kF32Eps * (std::fabs(want_dg) + std::fabs(dh[i] * u[i] * s)) + 1e-37)
          << "n " << n << " i " << i;
    }
  }
}

TEST(SwiGLU, SiluAndSigmoidKnownValues) {
  EXPECT_EQ(sigmoid(0.0f), 0.5f);
  EXPECT_EQ(silu(0.0f), 0.0f);
  // σ(ln 3) = 3/4, silu(ln 3) = 0.75·ln 3.
  const float l3 = static_cast<float>(std::log(3.0));
  EXPECT_NEAR(sigmoid(l3), 0.75, 4 * kF32Eps);
  EXPECT_NEAR(silu(l3), 0.75 * l3, 4 * kF32Eps);
  // Saturation: silu(z) → z for large z, → 0⁻ for very negative z; never NaN.
  EXPECT_EQ(silu(100.0f), 100.0f);
  EXPECT_LE(std::fabs(silu(-100.0f)), 1e-30f);
  EXPECT_FALSE(std::isnan(silu(-1000.0f)));
  EXPECT_FALSE(std::isnan(silu(1000.0f)));
}

TEST(SwiGLU, HandComputed) {
  float gate[3] = {0.0f, 1.0f, -1.0f};
  const float up[3] = {5.0f, 2.0f, -4.0f};
  swiglu_inplace(gate, up, 3);
  EXPECT_EQ(gate[0], 0.0f);
  EXPECT_NEAR(gate[1], 2.0 / (1.0 + std::exp(-1.0)), kSwigluRelTol * 2);         // 2·silu(1) = 1.4621172
  EXPECT_NEAR(gate[2], -4.0 * -1.0 / (1.0 + std::exp(1.0)), kSwigluRelTol * 2);  // −4·silu(−1) = 1.0757656
}

}  // namespace
}  // namespace whale

namespace whale {
namespace {

// add_scaled_rows against a double sum: an f32 sum of k+1 terms (the initial y included) is within γ_{k+1}·S.
TEST(AddScaledRows, MatchesDouble) {
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t m : {1, 3, 6, 9})
    for (int64_t k : {1, 5, 64, 300})
      for (int64_t n : {1, 15, 16, 70, 512}) {
        const int64_t ldc = k + 2, ldr = n + 3, ldy = n + 1;
        std::vector<float> coef(m * ldc), rows(k * ldr), y(m * ldy);
        for (float& v : coef) v = u(rng);
        for (float& v : rows) v = u(rng);
        for (float& v : y) v = u(rng);
        const std::vector<float> y0 = y;
        add_scaled_rows(coef.data(), ldc, m, rows.data(), ldr, k, n, y.data(), ldy);
        for (int64_t t = 0; t < m; ++t)
          for (int64_t c = 0; c < ldy; ++c) {
            if (c >= n) {
              ASSERT_EQ(y[t * ldy + c], y0[t * ldy + c]) << "wrote past n";
              continue;
            }
            double exact = y0[t * ldy + c], abs = std::fabs(exact);
            for (int64_t j = 0; j < k; ++j) {
              const double term = static_cast<double>(coef[t * ldc + j]) * rows[j * ldr + c];
              exact += term;
              abs += std::fabs(term);
            }
            const double n_terms = static_cast<double>(k + 1);
            ASSERT_LE(std::fabs(y[t * ldy + c] - exact), n_terms * 0x1p-24 / (1 - n_terms * 0x1p-24) * abs + 1e-30)
                << "m " << m << " k " << k << " n " << n << " t " << t << " c " << c;
          }
      }
}

// Rows are grouped in fours inside add_scaled_rows; a row's result must be bitwise what it gets alone (decode
// attention relies on it: heads mixed together give the logits of heads mixed one by one).
TEST(AddScaledRows, RowIndependentOfGrouping) {
  std::mt19937 rng(22);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const int64_t m = 11, k = 37, n = 200;
  std::vector<float> coef(m * k), rows(k * n), y(m * n), alone(m * n);
  for (float& v : coef) v = u(rng);
  for (float& v : rows) v = u(rng);
  for (float& v : y) v = u(rng);
  alone = y;
  add_scaled_rows(coef.data(), k, m, rows.data(), n, k, n, y.data(), n);
  for (int64_t t = 0; t < m; ++t) add_scaled_rows(coef.data() + t * k, k, 1, rows.data(), n, k, n, alone.data() + t * n, n);
  for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], alone[i]) << "element " << i;
}

// add_scaled_rows takes the rows in blocks (so that a block stays in cache while every y row passes over it); each
// element must still get its products in row order: the same bits as the rows given in two calls, first then last.
TEST(AddScaledRows, RowBlocksKeepRowOrder) {
  std::mt19937 rng(24);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t m : {1, 5, 8})
    for (int64_t k : {129, 300, 1000})
      for (int64_t n : {512, 77}) {
        std::vector<float> coef(m * k), rows(k * n), y(m * n);
        for (float& v : coef) v = u(rng);
        for (float& v : rows) v = u(rng);
        for (float& v : y) v = u(rng);
        std::vector<float> split = y;
        add_scaled_rows(coef.data(), k, m, rows.data(), n, k, n, y.data(), n);
        const int64_t cut = k / 3;  // not a block boundary
        add_scaled_rows(coef.data(), k, m, rows.data(), n, cut, n, split.data(), n);
        add_scaled_rows(coef.data() + cut, k, m, rows.data() + cut * n, n, k - cut, n, split.data(), n);
        for (size_t i = 0; i < y.size(); ++i)
          ASSERT_EQ(0, std::memcmp(&y[i], &split[i], sizeof(float))) << "m " << m << " k " << k << " n " << n << " element " << i;
      }
}

// The long-cache form of the mix must give add_scaled_rows' bits (decode's attention and a prompt's must agree), on
// every instruction set: rows of y in fours and alone, columns in panels, single vectors and past the last whole
// vector, rows scattered over pages, and more rows than one block of them (300).
TEST(AddScaledRows, AtRowAddressesBitwiseEqual) {
  std::mt19937 rng(27);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t target : supported_targets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (int64_t m : {1, 5, 16, 17, 35})
      for (int64_t k : {1, 7, 70, 300})
        for (int64_t n : {1, 15, 16, 64, 77, 131}) {
          const int64_t ldc = k + 2, ldy = n + 3, ldr = n + 5;
          std::vector<float> coef(m * ldc), rows(k * 2 * ldr), y(m * ldy);
          for (float& v : coef) v = u(rng);
          for (float& v : rows) v = u(rng);
          for (float& v : y) v = u(rng);
          // Row j at 2j (every other row of `rows`): the form takes any row addresses.
          std::vector<const float*> ptrs(k);
          for (int64_t j = 0; j < k; ++j) ptrs[j] = rows.data() + 2 * j * ldr;
          std::vector<float> want = y, got = y;
          add_scaled_rows(coef.data(), ldc, m, rows.data(), 2 * ldr, k, n, want.data(), ldy);
          add_scaled_rows_at(coef.data(), ldc, m, ptrs.data(), k, n, got.data(), ldy);
          for (size_t e = 0; e < want.size(); ++e)
            ASSERT_EQ(0, std::memcmp(&want[e], &got[e], sizeof(float)))
                << "target " << target << " m " << m << " k " << k << " n " << n << " element " << e;
        }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// row_dots against its double-precision reference: an f32 dot product of k terms, however its additions are ordered
// (k/N vector steps per lane, then the lanes' sum), is within γ_k·Σ|q_c·key_c| of the exact one.
TEST(RowDots, MatchesDoubleReference) {
  std::mt19937 rng(25);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t target : supported_targets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (int64_t m : {1, 3, 4, 9})
      for (int64_t n : {1, 4, 7, 33})
        for (int64_t k : {1, 15, 16, 576, 579}) {
          const int64_t ldq = k + 1, ldk = k + 3, ldo = n + 2;
          std::vector<float> q(m * ldq), keys(n * ldk), out(m * ldo, -7.0f), want(m * ldo, -7.0f);
          for (float& v : q) v = u(rng);
          for (float& v : keys) v = u(rng);
          row_dots(q.data(), ldq, m, keys.data(), ldk, n, k, out.data(), ldo);
          row_dots_reference(q.data(), ldq, m, keys.data(), ldk, n, k, want.data(), ldo);
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < ldo; ++j) {
              if (j >= n) {
                ASSERT_EQ(out[i * ldo + j], -7.0f) << "wrote past n";
                continue;
              }
              double abs = 0.0;
              for (int64_t c = 0; c < k; ++c) abs += std::fabs(static_cast<double>(q[i * ldq + c]) * keys[j * ldk + c]);
              const double kk = static_cast<double>(k);
              ASSERT_LE(std::fabs(static_cast<double>(out[i * ldo + j]) - want[i * ldo + j]),
                        kk * 0x1p-24 / (1 - kk * 0x1p-24) * abs + 0x1p-24 * std::fabs(want[i * ldo + j]) + 1e-30)
                  << "m " << m << " n " << n << " k " << k << " i " << i << " j " << j;
            }
        }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// A score's bits must depend only on its query and key: attention scores a query alone (decode), with other heads
// (several per call) or in a prompt chunk, over cache pages of any size, and gives it the same logits every way.
// k = 576 (MLA's latent and rope width, whole vectors) takes the AVX-512 4 × 4 blocks' joint lane sums; 579 has a
// column tail.
TEST(RowDots, BitwiseIndependentOfGrouping) {
  std::mt19937 rng(26);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t target : supported_targets())
  for (const int64_t k : {int64_t{579}, int64_t{576}}) {
    hwy::SetSupportedTargetsForTest(target);
    const int64_t m = 11, n = 23;
    std::vector<float> q(m * k), keys(n * k), whole(m * n), alone(m * n), split(m * n);
    for (float& v : q) v = u(rng);
    for (float& v : keys) v = u(rng);
    // With a prefetch range (here the keys themselves): prefetching changes no result.
    row_dots(q.data(), k, m, keys.data(), k, n, k, whole.data(), n, keys.data(),
             n * k * static_cast<int64_t>(sizeof(float)));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) row_dots(q.data() + i * k, k, 1, keys.data() + j * k, k, 1, k, &alone[i * n + j], 1);
    // Queries from 1, 6 and 2 on; keys from 3, then 5 pages of 4.
    for (int64_t i0 : {int64_t{0}, int64_t{1}, int64_t{7}}) {
      const int64_t i1 = i0 == 0 ? 1 : i0 == 1 ? 7 : m;
      row_dots(q.data() + i0 * k, k, i1 - i0, keys.data(), k, 3, k, split.data() + i0 * n, n);
      for (int64_t j0 = 3; j0 < n; j0 += 4)
        row_dots(q.data() + i0 * k, k, i1 - i0, keys.data() + j0 * k, k, std::min<int64_t>(4, n - j0), k,
                 split.data() + i0 * n + j0, n, j0 + 4 < n ? keys.data() + (j0 + 4) * k : nullptr,
                 std::min<int64_t>(4, std::max<int64_t>(0, n - j0 - 4)) * k * static_cast<int64_t>(sizeof(float)));
    }
    for (size_t e = 0; e < whole.size(); ++e) {
      ASSERT_EQ(0, std::memcmp(&whole[e], &alone[e], sizeof(float)))
          << "target " << target << " k " << k << " element " << e;
      ASSERT_EQ(0, std::memcmp(&whole[e], &split[e], sizeof(float)))
          << "target " << target << " k " << k << " element " << e;
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// bf16 rows read in place (absorbed attention's BF16 W_UK) must give bitwise what the same rows widened to f32 give:
// the widening is exact and each element keeps its FMAs in row order. Shapes with column tails past whole vectors and
// panels, few and many tokens, with and without the prefetch (which only reads ahead: the rows are followed by
// padding it may touch), on every instruction set.
TEST(AddScaledBf16Rows, BitwiseTheWidenedRows) {
  std::mt19937 rng(23);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t target : supported_targets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (int64_t m : {1, 3, 4, 9})
      for (int64_t k : {1, 16, 37})
        for (int64_t n : {512, 200, 7})
          for (int64_t prefetch : {int64_t{0}, int64_t{256}}) {
            const int64_t ldr = n + 3, ldc = k + 1, ldy = n + 5;
            std::vector<uint16_t> bits(static_cast<size_t>(k * ldr) + 512);
            std::vector<float> widened(static_cast<size_t>(k * ldr)), coef(static_cast<size_t>(m * ldc));
            for (size_t i = 0; i < bits.size(); ++i) {
              bits[i] = f32_to_bf16(u(rng));
              if (i < widened.size()) widened[i] = bf16_to_f32(bits[i]);
            }
            for (float& v : coef) v = u(rng);
            std::vector<float> y(static_cast<size_t>(m * ldy));
            for (float& v : y) v = u(rng);
            std::vector<float> want = y;
            add_scaled_rows(coef.data(), ldc, m, widened.data(), ldr, k, n, want.data(), ldy);
            add_scaled_bf16_rows(coef.data(), ldc, m, bits.data(), ldr, k, n, y.data(), ldy, prefetch);
            for (size_t i = 0; i < y.size(); ++i)
              ASSERT_EQ(0, std::memcmp(&y[i], &want[i], sizeof(float)))
                  << "m " << m << " k " << k << " n " << n << " prefetch " << prefetch << " element " << i;
          }
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace
}  // namespace whale
