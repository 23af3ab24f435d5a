#include "whale/kernels/matmul_bf16_dot.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <fmt/format.h>

#include "whale/core/dtype.h"
#include "whale/kernels/matmul.h"

namespace whale {
namespace {

// bf16 from its definition (sign, 8 exponent bits, 7 mantissa bits), independent of core/dtype.h.
double decode_bf16(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 7) & 0xFF, mant = h & 0x7F;
  const double integer = exp == 0 ? mant : 128 + mant;
  return (sign ? -1.0 : 1.0) * std::ldexp(integer, (exp == 0 ? 1 : exp) - 127 - 7);
}

std::vector<uint16_t> random_bf16(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 0.05f);
  std::vector<uint16_t> v(static_cast<size_t>(n));
  for (auto& h : v) h = f32_to_bf16(d(rng));
  return v;
}

std::vector<float> random_f32(int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& f : v) f = d(rng);
  return v;
}

Weight2D bf16_weight(const std::vector<uint16_t>& data, int64_t rows, int64_t cols) {
  Weight2D w;
  w.dtype = DType::BF16;
  w.rows = rows;
  w.cols = cols;
  w.data = reinterpret_cast<const uint8_t*>(data.data());
  return w;
}

// A random BF16 weight [n, k] and m tokens of activations, with their bf16 rounding.
struct RandomProduct {
  int64_t n, k, m;
  std::vector<uint16_t> wd;
  std::vector<float> x;
  bf16dot::RoundedActivations xb;

  RandomProduct(int64_t n_, int64_t k_, int64_t m_, std::mt19937& rng)
      : n(n_), k(k_), m(m_), wd(random_bf16(n * k, rng)), x(random_f32(m * k, rng)) {
    bf16dot::round_activations(x.data(), m, k, k, xb);
  }
  Weight2D weight() const { return bf16_weight(wd, n, k); }

  // Row r · token t of the bf16 values in double (exact: each product and the sum fit), and Σ |products|.
  struct Dot {
    double exact = 0, magnitude = 0;
  };
  Dot exact_dot(int64_t r, int64_t t) const {
    Dot d;
    for (int64_t c = 0; c < k; ++c) {
      const double p = decode_bf16(wd[r * k + c]) * decode_bf16(xb.data()[t * k + c]);
      d.exact += p;
      d.magnitude += std::abs(p);
    }
    return d;
  }
};

TEST(Bf16Dot, RoundingIsBitwiseF32ToBf16) {
  std::mt19937 rng(7);
  const int64_t m = 5, k = 83, ldx = 90;  // a row stride past k, and k not a multiple of the vector width
  std::vector<float> x = random_f32(m * ldx, rng);
  // Ties (both ways), a subnormal, infinities and a NaN among them.
  const uint32_t special[] = {0x3F808000u, 0x3F818000u, 0x00000123u, 0x7F800000u, 0xFF800000u, 0x7FC00001u,
                              0xFF812345u, 0x7F7FFFFFu};
  for (size_t i = 0; i < std::size(special); ++i) std::memcpy(&x[3 * ldx + i * 7], &special[i], 4);
  bf16dot::RoundedActivations out;
  bf16dot::round_activations(x.data(), m, k, ldx, out);
  ASSERT_EQ(out.size(), static_cast<size_t>(m * k));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(out.data()) % 64, 0u);
  for (int64_t t = 0; t < m; ++t)
    for (int64_t c = 0; c < k; ++c)
      ASSERT_EQ(out.data()[t * k + c], f32_to_bf16(x[t * ldx + c])) << "token " << t << " column " << c;
  ThreadPool pool(2);
  bf16dot::RoundedActivations on_pool;
  const int64_t big = 1200;  // enough values for the pool
  std::vector<float> xb = random_f32(big * 64, rng);
  bf16dot::round_activations(xb.data(), big, 64, 64, on_pool, &pool);
  for (int64_t i = 0; i < big * 64; ++i) ASSERT_EQ(on_pool.data()[i], f32_to_bf16(xb[i]));
}

TEST(Bf16Dot, UsableOnlyForMultiplesOf32) {
  EXPECT_FALSE(bf16dot::usable(0));
  EXPECT_FALSE(bf16dot::usable(48));
  EXPECT_EQ(bf16dot::usable(64), bf16dot::available());
}

// Each product against the double sum of the same bf16 values: the only error is f32 accumulation over k terms.
TEST(Bf16Dot, WithinF32AccumulationOfTheExactProduct) {
  std::vector<uint16_t> scratch;
  if (!bf16dot::available()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  std::mt19937 rng(11);
  for (int64_t k : {32, 64, 1408, 2048})
    for (int64_t n : {1, 4, 7, 70})
      for (int64_t m : {1, 3, 4, 9, 33}) {
        SCOPED_TRACE(fmt::format("n {} k {} m {}", n, k, m));
        const RandomProduct pr(n, k, m, rng);
        std::vector<float> y(static_cast<size_t>(m * n), std::nanf(""));
        ASSERT_TRUE(bf16dot::rows(pr.weight(), 0, n, pr.xb, y.data(), n, scratch));
        const double u = 0x1p-24, gamma = (k / 16 + 2 + 4) * u / (1 - (k / 16 + 6) * u);
        for (int64_t t = 0; t < m; ++t)
          for (int64_t r = 0; r < n; ++r) {
            const RandomProduct::Dot d = pr.exact_dot(r, t);
            ASSERT_LE(std::abs(y[t * n + r] - d.exact), gamma * d.magnitude) << "row " << r << " token " << t;
          }
      }
}

// The SIMD tiles (the streaming ones for 1-2 tokens, the 4 × 6 ones beyond) against the scalar model of the
// instruction and the lane tree. Where the CPU's vdpbf16ps adds a pair's two products as the Intel manual describes,
// the two are bitwise equal; the bound allows another order within a pair.
TEST(Bf16Dot, MatchesScalarModel) {
  std::vector<uint16_t> scratch;
  if (!bf16dot::available()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  std::mt19937 rng(13);
  const int64_t n = 23, k = 256;
  int bitwise = 0;
  for (int64_t m : {1, 2, 3, 4, 5, 6, 11}) {
    const RandomProduct pr(n, k, m, rng);
    std::vector<float> y(m * n), ref(m * n);
    ASSERT_TRUE(bf16dot::rows(pr.weight(), 0, n, pr.xb, y.data(), n, scratch));
    bf16dot::rows_reference(pr.weight(), 0, n, pr.xb, ref.data(), n);
    for (int64_t i = 0; i < m * n; ++i) {
      const int64_t t = i / n, r = i % n;
      ASSERT_LE(std::abs(y[i] - ref[i]), 4 * 0x1p-24 * pr.exact_dot(r, t).magnitude)
          << "m " << m << " row " << r << " token " << t;
      bitwise += y[i] == ref[i];
    }
  }
  RecordProperty("bitwise_equal", bitwise);
}

// A (row, token) result does not depend on the other tokens, on the token count (up to kStreamTokens take the
// streaming tiles of 8, 6 or 4 rows, more the 4 × 6 ones), or on where the row range starts. Rows of 96 and 1440
// elements: the streaming tiles change their prefetch distance 2 KB before a row's end, which only the longer rows
// have (and theirs are not whole cache lines).
TEST(Bf16Dot, BitwiseIndependentOfBatchAndRowRange) {
  std::vector<uint16_t> scratch;
  if (!bf16dot::available()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  std::mt19937 rng(17);
  for (const int64_t k : {96, 1440}) {
    const int64_t n = 37, m = 38;
    const RandomProduct pr(n, k, m, rng);
    const Weight2D w = pr.weight();
    std::vector<float> y(m * n);
    ASSERT_TRUE(bf16dot::rows(w, 0, n, pr.xb, y.data(), n, scratch));
    for (int64_t t = 0; t < m; t += 5)
      for (int64_t few : {1, 2, 3, 4, 5, 6, 7}) {  // tokens t .. t + few - 1 (the last ones repeated past the end)
        std::vector<float> xs;
        for (int64_t i = 0; i < few; ++i) {
          const float* row = pr.x.data() + std::min(t + i, m - 1) * k;
          xs.insert(xs.end(), row, row + k);
        }
        bf16dot::RoundedActivations part_x;
        bf16dot::round_activations(xs.data(), few, k, k, part_x);
        for (int64_t r0 : {0, 1, 6, 33}) {
          std::vector<float> part(few * (n - r0));
          ASSERT_TRUE(bf16dot::rows(w, r0, n, part_x, part.data(), n - r0, scratch));
          for (int64_t i = 0; i < few; ++i)
            for (int64_t r = r0; r < n; ++r)
              ASSERT_EQ(f32_to_bits(part[i * (n - r0) + r - r0]), f32_to_bits(y[std::min(t + i, m - 1) * n + r]))
                  << "k " << k << ", " << few << " tokens from " << t << ", token " << i << " row " << r;
        }
      }
  }
}

// matmul with a weight marked bf16_activations: every product takes the rounded path where this CPU rounds (bitwise
// what bf16dot::rows gives, whatever the pool and the token count), other CPUs the f32 path (bitwise unmarked).
TEST(Bf16Dot, MarkedWeightsInMatmul) {
  std::mt19937 rng(19);
  const int64_t n = 70, k = 128;
  const std::vector<uint16_t> wd = random_bf16(n * k, rng);
  Weight2D plain = bf16_weight(wd, n, k), marked = plain;
  marked.bf16_activations = true;
  ThreadPool pool(2);
  for (int64_t m : {1, 2, 8, 45}) {
    SCOPED_TRACE(fmt::format("m {}", m));
    const std::vector<float> x = random_f32(m * k, rng);
    std::vector<float> y_plain(m * n), y_marked(m * n), y_expected(m * n);
    matmul(plain, x.data(), m, y_plain.data(), pool);
    matmul(marked, x.data(), m, y_marked.data(), pool);
    const bool rounded = rounds_bf16_activations();
    if (rounded) {
      bf16dot::RoundedActivations xb;
      bf16dot::round_activations(x.data(), m, k, k, xb);
      std::vector<uint16_t> scratch;
      ASSERT_TRUE(bf16dot::rows(plain, 0, n, xb, y_expected.data(), n, scratch));
    } else {
      y_expected = y_plain;
    }
    for (int64_t i = 0; i < m * n; ++i) ASSERT_EQ(f32_to_bits(y_marked[i]), f32_to_bits(y_expected[i])) << i;
    if (rounded) {
      EXPECT_NE(y_marked, y_plain);  // the rounding is visible
    }
  }
}

// Weights on a 64-byte boundary are read in place, others through the aligned copy (prompts) or in place with loads
// across lines (up to kStreamTokens tokens): the same bits either way.
TEST(Bf16Dot, AlignedAndCopiedRowsAgree) {
  if (!bf16dot::available()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  std::mt19937 rng(23);
  for (int64_t m : {1, 2, 4, 13}) {
    SCOPED_TRACE(fmt::format("m {}", m));
    const int64_t n = 9, k = 160;
    const std::vector<uint16_t> wd = random_bf16(n * k, rng);
    std::vector<uint16_t> buffer(n * k + 64);
    const auto base = reinterpret_cast<uintptr_t>(buffer.data());
    uint16_t* aligned = buffer.data() + ((64 - base % 64) % 64) / 2;
    std::memcpy(aligned, wd.data(), wd.size() * 2);
    std::memcpy(aligned + 1, wd.data(), wd.size() * 2);  // from 2 bytes past the boundary
    const std::vector<float> x = random_f32(m * k, rng);
    bf16dot::RoundedActivations xb;
    bf16dot::round_activations(x.data(), m, k, k, xb);
    std::vector<float> y_copied(m * n), y_in_place(m * n);
    std::vector<uint16_t> scratch;
    Weight2D off = bf16_weight(wd, n, k);
    off.data = reinterpret_cast<const uint8_t*>(aligned + 1);
    ASSERT_TRUE(bf16dot::rows(off, 0, n, xb, y_copied.data(), n, scratch));
    std::memcpy(aligned, wd.data(), wd.size() * 2);
    Weight2D on = off;
    on.data = reinterpret_cast<const uint8_t*>(aligned);
    ASSERT_TRUE(bf16dot::rows(on, 0, n, xb, y_in_place.data(), n, scratch));
    for (int64_t i = 0; i < m * n; ++i) ASSERT_EQ(f32_to_bits(y_copied[i]), f32_to_bits(y_in_place[i])) << i;
  }
}

TEST(Bf16Dot, RefusesOtherShapesAndFormats) {
  std::vector<uint16_t> scratch;
  std::vector<uint16_t> wd(4 * 48);
  Weight2D w = bf16_weight(wd, 4, 48);
  bf16dot::RoundedActivations xb;
  const std::vector<float> zeros(48, 0.0f);
  bf16dot::round_activations(zeros.data(), 1, 48, 48, xb);
  float y[4];
  EXPECT_FALSE(bf16dot::rows(w, 0, 4, xb, y, 4, scratch));  // k not a multiple of 32
  w.cols = 32, xb.k = 64;
  EXPECT_FALSE(bf16dot::rows(w, 0, 4, xb, y, 4, scratch));  // activations of another width
  w.dtype = DType::F16, xb.k = 32;
  EXPECT_FALSE(bf16dot::rows(w, 0, 4, xb, y, 4, scratch));
}

}  // namespace
}  // namespace whale
