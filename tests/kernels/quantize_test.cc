#include "whale/kernels/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include "whale/core/dtype.h"
#include "whale/core/error.h"
#include "instruction_sets.h"
#include "matmul_test_util.h"

namespace whale {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// f16 bits of 2^e for a normal f16 power of two (-14 <= e <= 15).
uint16_t f16_pow2(int e) { return static_cast<uint16_t>((e + 15) << 10); }

std::string block_error(QuantType t, const std::vector<float>& w) {
  int8_t q[32];
  try {
    quantize_block(t, w.data(), q);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no Error thrown";
  return "";
}

TEST(Quantize, Q8ExactCodesAndTiesToEven) {
  const float s = 0x1p-7f;  // absmax 127 s gives s exactly, an f16 power of two
  std::vector<float> w(32, 0.0f);
  const float mult[] = {127, -127, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3, 126.5f, -126.5f, 0.49f, 64};
  for (size_t j = 0; j < std::size(mult); ++j) w[j] = mult[j] * s;
  w[31] = -0.0f;
  int8_t q[32];
  EXPECT_EQ(quantize_block(QuantType::Q8, w.data(), q), f16_pow2(-7));
  const int expected[] = {127, -127, 0, 2, 2, 0, -2, -2, 3, 126, -126, 0, 64};
  for (size_t j = 0; j < std::size(expected); ++j) EXPECT_EQ(q[j], expected[j]) << "value " << j;
  for (int j = std::size(expected); j < 32; ++j) EXPECT_EQ(q[j], 0) << "value " << j;
}

// Σ_j (w_j − s·q_j)² in double, the quantity q4's scale search minimises.
double block_squared_error(const std::vector<float>& w, float s, const int8_t* q) {
  double e = 0.0;
  for (int j = 0; j < 32; ++j) {
    const double d = static_cast<double>(w[j]) - static_cast<double>(s) * q[j];
    e += d * d;
  }
  return e;
}

// q4 codes of w with the given scale, by the documented rounding (clamp(rint(w / s), −8, 7)).
std::vector<int8_t> q4_codes(const std::vector<float>& w, float s) {
  std::vector<int8_t> q(32, 0);
  if (s != 0.0f)
    for (int j = 0; j < 32; ++j) q[j] = static_cast<int8_t>(std::clamp(std::rint(w[j] / s), -8.0f, 7.0f));
  return q;
}

TEST(Quantize, Q4ExactBlockKeepsTheDefaultScale) {
  // Every value a multiple of s = absmax / 7 (an f16 power of two): zero error, which no other scale beats.
  const float s = 0x1p-3f;
  std::vector<float> w(32, 0.0f);
  const float mult[] = {7, -7, 1, 2, -4, 6, -5, 3, -1, 0, 5, -2};
  for (size_t j = 0; j < std::size(mult); ++j) w[j * 2] = mult[j] * s;
  int8_t q[32];
  EXPECT_EQ(quantize_block(QuantType::Q4, w.data(), q), f16_pow2(-3));
  for (int j = 0; j < 32; ++j) EXPECT_EQ(q[j], j % 2 == 0 && j / 2 < 12 ? mult[j / 2] : 0) << "value " << j;
}

TEST(Quantize, Q4NegativeExtremeReachesMinus8) {
  const float s = 0x1p-2f;
  std::vector<float> w(32, 0.0f);
  w[5] = -8 * s;   // only a negative value reaches absmax: s = absmax / 8, code -8 (nibble 0)
  w[6] = 7 * s;
  w[7] = -3 * s;
  int8_t q[32];
  EXPECT_EQ(quantize_block(QuantType::Q4, w.data(), q), f16_pow2(-2));
  EXPECT_EQ(q[5], -8);
  EXPECT_EQ(q[6], 7);
  EXPECT_EQ(q[7], -3);
}

TEST(Quantize, Q4ScaleSearchNeverLosesToTheDefaultAndPicksTheBestCandidate) {
  // On random blocks (Gaussian, heavy-tailed, one outlier), the chosen scale is one of the documented candidates
  // f16(s32 · f), its codes follow from it, and its squared error is the least of all candidates' (the first of
  // equals), so never above the default max/7 (or /8) scale's.
  const float factors[] = {1.0f,   0.975f, 0.95f,  0.925f, 0.9f,  0.875f, 0.85f, 0.825f, 0.8f,  0.775f,
                           0.75f,  0.725f, 0.7f,   1.025f, 1.05f, 1.075f, 1.1f,  1.125f, 1.15f};
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::student_t_distribution<float> heavy(2.0f);
  int improved = 0;
  for (int trial = 0; trial < 600; ++trial) {
    std::vector<float> w(32);
    for (float& v : w) v = (trial % 3 == 1 ? heavy(rng) : normal(rng)) * 0.02f;
    if (trial % 3 == 2) w[trial % 32] *= 6.0f;
    float absmax = 0.0f, wmax = 0.0f;
    for (float v : w) {
      absmax = std::max(absmax, std::fabs(v));
      wmax = std::max(wmax, v);
    }
    const float s32 = wmax == absmax ? absmax / 7.0f : absmax / 8.0f;
    double best = 0.0;
    uint16_t best_h = 0;
    for (size_t k = 0; k < std::size(factors); ++k) {
      const uint16_t h = f32_to_f16(s32 * factors[k]);
      const double e = block_squared_error(w, f16_to_f32(h), q4_codes(w, f16_to_f32(h)).data());
      if (k == 0 || e < best) {
        best = e;
        best_h = h;
      }
    }
    int8_t q[32];
    const uint16_t h = quantize_block(QuantType::Q4, w.data(), q);
    ASSERT_EQ(h, best_h) << "trial " << trial;
    const std::vector<int8_t> expected = q4_codes(w, f16_to_f32(h));
    for (int j = 0; j < 32; ++j) ASSERT_EQ(q[j], expected[j]) << "trial " << trial << " value " << j;
    const uint16_t h0 = f32_to_f16(s32);
    const double default_error = block_squared_error(w, f16_to_f32(h0), q4_codes(w, f16_to_f32(h0)).data());
    ASSERT_LE(block_squared_error(w, f16_to_f32(h), q), default_error);
    improved += h != h0;
  }
  EXPECT_GT(improved, 300) << "the search should usually beat max/7";
}

TEST(Quantize, ScaleIsRoundedToF16BeforeTheCodes) {
  // absmax 1: s = f16(1/127) = 1032 · 2^-17, a little below 1/127. A value at 63.498 / 127 gives 63.498 with the
  // exact scale (code 63) but 63.503 with the rounded one (code 64): the codes must use the rounded scale.
  std::vector<float> w(32, 0.0f);
  w[0] = 1.0f;
  w[1] = 63.498f / 127.0f;
  int8_t q[32];
  const uint16_t h = quantize_block(QuantType::Q8, w.data(), q);
  EXPECT_EQ(h, f32_to_f16(1.0f / 127.0f));
  EXPECT_EQ(f16_to_f32(h), std::ldexp(1032.0f, -17));
  EXPECT_EQ(std::rint(w[1] * 127.0f), 63.0f);
  EXPECT_EQ(q[1], 64);
  EXPECT_EQ(q[0], 127);
}

TEST(Quantize, SubnormalAndUnderflowingScales) {
  std::vector<float> w(32, 0.0f);
  int8_t q[32];
  // absmax 1e-5: 1e-5 / 127 = 7.9e-8 rounds to the smallest f16 subnormal 2^-24 = 6.0e-8; 1e-5 / 2^-24 = 167.8
  // is clamped to 127.
  w[0] = 1e-5f;
  w[1] = -0.5e-5f;
  EXPECT_EQ(quantize_block(QuantType::Q8, w.data(), q), 0x0001);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1], static_cast<int>(std::rint(-0.5e-5f / 0x1p-24f)));
  // absmax 2e-6: the scale underflows to 0 and every code is 0.
  w[0] = 2e-6f;
  w[1] = -1e-6f;
  EXPECT_EQ(quantize_block(QuantType::Q8, w.data(), q), 0x0000);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(q[j], 0);
  // All zeros (and -0.0): scale 0, codes 0.
  std::fill(w.begin(), w.end(), -0.0f);
  EXPECT_EQ(quantize_block(QuantType::Q4, w.data(), q), 0x0000);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(q[j], 0);
}

TEST(Quantize, RejectsNonFiniteValuesAndScaleOverflow) {
  std::vector<float> w(32, 1.0f);
  w[3] = std::nanf("");
  EXPECT_THAT(block_error(QuantType::Q8, w), AllOf(HasSubstr("column 3"), HasSubstr("nan")));
  w[3] = -INFINITY;
  EXPECT_THAT(block_error(QuantType::Q4, w), HasSubstr("inf"));
  w[3] = 1e7f;  // 1e7 / 127 = 78740 > 65504
  EXPECT_THAT(block_error(QuantType::Q8, w), HasSubstr("f16 range"));
  w[3] = 8e6f;  // 62992: fits
  int8_t q[32];
  EXPECT_NO_THROW(quantize_block(QuantType::Q8, w.data(), q));
  w[3] = 5e5f;  // q4: 5e5 / 7 = 71429 > 65504
  EXPECT_THAT(block_error(QuantType::Q4, w), HasSubstr("f16 range"));

  std::vector<float> m(5 * 40, 0.5f);
  m[3 * 40 + 37] = std::nanf("");
  std::vector<uint8_t> data(quant_data_bytes(QuantType::Q8, 5, 40));
  try {
    quantize_matrix(QuantType::Q8, m.data(), 5, 40, data.data());
    ADD_FAILURE() << "no Error thrown";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), AllOf(HasSubstr("row 3"), HasSubstr("columns 32..63"), HasSubstr("column 5")));
  }
}

// Padding: a [5, 40] matrix is stored as [16, 64]: rows 5..15 and columns 40..63 are zero blocks / zero codes. One
// superblock: blocks 0 and 1 (16·B bytes each), then their 32 scales.
TEST(Quantize, PaddingRowsAndColumnsAndLayout) {
  for (QuantType t : {QuantType::Q8, QuantType::Q4}) {
    const int64_t rows = 5, cols = 40;
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> w(rows * cols);
    for (float& v : w) v = normal(rng);
    const int bb = quant_block_bytes(t);
    EXPECT_EQ(quant_data_shape(t, rows, cols), (std::vector<int64_t>{1, 1, 2 * 16 * bb + 64}));
    std::vector<uint8_t> data(quant_data_bytes(t, rows, cols), 0xAB);
    ASSERT_EQ(data.size(), static_cast<size_t>(16 * 64 * bb / 32 + 64));
    quantize_matrix(t, w.data(), rows, cols, data.data());

    for (int64_t r = 0; r < 16; ++r)
      for (int64_t kb = 0; kb < 2; ++kb) {
        // Each block, quantized on its own from the zero-padded row, lands where quant_code_position says.
        std::vector<float> block(32, 0.0f);
        for (int j = 0; j < 32; ++j)
          if (r < rows && kb * 32 + j < cols) block[j] = w[r * cols + kb * 32 + j];
        int8_t expect[32];
        const uint16_t h = quantize_block(t, block.data(), expect);
        const int64_t at = quant_scale_offset(t, 64, r, kb);
        EXPECT_EQ(at, 2 * 16 * bb + (kb * 16 + r) * 2);
        EXPECT_EQ(data[at] | data[at + 1] << 8, h);
        for (int j = 0; j < 32; ++j) {
          EXPECT_EQ(matmul_test::stored_code(t, data.data(), 64, r, kb * 32 + j), expect[j]) << "row " << r << " col " << kb * 32 + j;
          if (r >= rows || kb * 32 + j >= cols) {
            EXPECT_EQ(expect[j], 0);
          }
        }
      }
    // Spot checks of the line order, written out by hand: W[3, 37] is column 5 of block 1, line 1, row 3.
    const QuantCodePosition p = quant_code_position(t, 64, 3, 37);
    EXPECT_EQ(p.byte, 16 * bb + (1 * 16 + 3) * 4 + 1);
    EXPECT_FALSE(p.high_nibble);
    if (t == QuantType::Q4) {  // W[3, 53]: column 21 of block 1, the high nibble of column 5's byte
      const QuantCodePosition h = quant_code_position(t, 64, 3, 53);
      EXPECT_EQ(h.byte, p.byte);
      EXPECT_TRUE(h.high_nibble);
    }
    // Every byte is written: the same output over a buffer filled differently.
    std::vector<uint8_t> data2(data.size(), 0x00);
    quantize_matrix(t, w.data(), rows, cols, data2.data());
    EXPECT_EQ(data2, data);
  }
}

// A block whose q4 winner hangs on how the squared errors are summed. Scales 1 (the default) and 1.125 tie exactly,
// below every other candidate: 3.0 (code 3 at scale 1) and 3.375 (code 3 at 1.125) swap their errors, 0.140625,
// between the two. Six values 2^-29 (code 0 at every scale, 2^-58 each) sit between those. Scale 1 sums them from 0,
// exactly, and ends 0.75 of a double ulp above the tie; scale 1.125 adds them to 0.140625 one at a time, each below
// half an ulp, so they vanish. Summed in double from column 0 up, 1.125 wins; summed in f32, or from column 31 down,
// they vanish for both scales, which then tie, and scale 1 (the first of equals) stays.
// Times 2^e, −12 <= e <= 9, the scales stay normal f16 values and every relation holds.
std::vector<float> sum_order_block(int e) {
  std::vector<float> w(32, 0.0f);
  w[0] = 3.0f;
  for (int j = 1; j <= 6; ++j) w[j] = 0x1p-29f;
  w[7] = 3.375f;
  w[8] = -6.765625f;
  w[9] = 2.140625f;
  w[10] = 7.0f;
  for (float& v : w) v = std::ldexp(v, e);
  return w;
}

// A block whose q4 winner hangs on the codes being rint(w / s) with an IEEE division. 3.5 s − 1 ulp (s = f16(0.95),
// the third candidate) divides to 3.4999998 (code 3), while times f32(1 / s) it gives 3.5 (code 4): the error
// s/2 − δ becomes s/2 + δ. 5.4241934 puts the second candidate's error in between, so the division picks s and
// the reciprocal the second candidate. The other values are multiples of s; times 2^e as sum_order_block.
std::vector<float> division_block(int e) {
  const float s = 0.9501953125f;
  std::vector<float> w = {7.0f, 0x1.a9affep+1f, 0x1.5b25fcp+2f, -3 * s, 2 * s, -3 * s, 5 * s, -6 * s};
  w.resize(32, 0.0f);
  for (float& v : w) v = std::ldexp(v, e);
  return w;
}

// The f16 scale q4's search picks for w, with each candidate's error summed by `sum` from the 32 terms (w_j − s·c_j)²
// in column order, and the codes from w_j · f32(1 / s) if `reciprocal`: the reference's algorithm with those swapped.
template <class Sum>
uint16_t q4_scale_with(const std::vector<float>& w, Sum sum, bool reciprocal = false) {
  float absmax = 0.0f, wmax = 0.0f;
  for (float v : w) absmax = std::max(absmax, std::fabs(v)), wmax = std::max(wmax, v);
  const float s32 = wmax == absmax ? absmax / 7.0f : absmax / 8.0f;
  double best = 0.0;
  uint16_t best_h = 0;
  for (size_t k = 0; k < std::size(kQ4ScaleFactors); ++k) {
    const uint16_t h = f32_to_f16(s32 * kQ4ScaleFactors[k]);
    const float s = f16_to_f32(h);
    if (k > 0 && ((h & 0x7C00) == 0x7C00 || s == 0.0f)) continue;
    const float inv = 1.0f / s;
    double terms[32];
    for (int j = 0; j < 32; ++j) {
      const float c = s == 0.0f ? 0.0f : std::clamp(std::rint(reciprocal ? w[j] * inv : w[j] / s), -8.0f, 7.0f);
      const double d = static_cast<double>(w[j]) - static_cast<double>(s) * c;
      terms[j] = d * d;
    }
    const double e = sum(terms);
    if (k == 0 || e < best) best = e, best_h = h;
  }
  return best_h;
}

TEST(QuantizeQ4Blocks, TrapBlocksDependOnTheSummationAndTheDivision) {
  // The blocks the SIMD comparison below relies on to catch a search that sums or divides unlike the reference.
  const auto in_order = [](const double* t) {
    double e = 0.0;
    for (int j = 0; j < 32; ++j) e += t[j];
    return e;
  };
  const auto reversed = [](const double* t) {
    double e = 0.0;
    for (int j = 31; j >= 0; --j) e += t[j];
    return e;
  };
  const auto in_f32 = [](const double* t) {
    float e = 0.0f;
    for (int j = 0; j < 32; ++j) e += static_cast<float>(t[j]);
    return static_cast<double>(e);
  };
  int8_t q[32];
  for (int e : {-12, 0, 9}) {
    const std::vector<float> w = sum_order_block(e);
    const uint16_t h = quantize_block(QuantType::Q4, w.data(), q);
    EXPECT_EQ(h, f32_to_f16(std::ldexp(1.125f, e))) << e;
    EXPECT_EQ(q4_scale_with(w, in_order), h) << e;
    EXPECT_EQ(q4_scale_with(w, reversed), f32_to_f16(std::ldexp(1.0f, e))) << e;
    EXPECT_EQ(q4_scale_with(w, in_f32), f32_to_f16(std::ldexp(1.0f, e))) << e;

    const std::vector<float> v = division_block(e);
    const uint16_t hv = quantize_block(QuantType::Q4, v.data(), q);
    EXPECT_EQ(hv, f32_to_f16(std::ldexp(0.95f, e))) << e;
    EXPECT_EQ(q4_scale_with(v, in_order), hv) << e;
    EXPECT_EQ(q4_scale_with(v, in_order, true), f32_to_f16(std::ldexp(0.975f, e))) << e;
  }
}

// Blocks for the q4 SIMD search, one kind after another: Gaussian and heavy-tailed values; magnitudes from 1e-30 (a
// zero scale) over f16 subnormal scales to 1e4 and to where candidate scales (or the default) overflow f16; extremes
// reached only by a negative value, or by both signs; all zero, one nonzero value, a partial block padded with
// zeros; values exactly halfway between two codes of the default or of another candidate's scale; the trap blocks.
std::vector<float> q4_search_blocks(int count, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::student_t_distribution<float> heavy(2.0f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::uniform_int_distribution<int> col(0, 31);
  const auto log_uniform = [&](float lo, float hi) { return lo * std::pow(hi / lo, u(rng)); };
  std::vector<float> all;
  for (int b = 0; b < count; ++b) {
    std::vector<float> w(32);
    for (float& v : w) v = normal(rng);
    const auto set_absmax = [&](float target) {
      float m = 0.0f;
      for (float v : w) m = std::max(m, std::fabs(v));
      for (float& v : w) v = v / m * target;
    };
    switch (b % 16) {
      case 0: for (float& v : w) v *= 0.02f; break;
      case 1: for (float& v : w) v = heavy(rng) * 0.02f; break;
      case 2: for (float& v : w) v *= 1e-30f; break;
      case 3: set_absmax(log_uniform(1.0f, 1e4f)); break;
      case 4: set_absmax(log_uniform(1e-8f, 5e-4f)); break;  // f16 subnormal scales
      case 5: set_absmax(7.0f * 0x1p-25f * (0.8f + 0.5f * u(rng))); break;  // around the smallest scale, 2^-24
      case 6: {  // 1.15 · max / 7 (or / 8) past 65504: the largest candidate scales overflow f16, the default not
        const bool negative = b % 32 >= 16;
        set_absmax(negative ? log_uniform(4.5e5f, 5.2e5f) : log_uniform(3.9e5f, 4.58e5f));
        const auto top =
            std::max_element(w.begin(), w.end(), [](float x, float y) { return std::fabs(x) < std::fabs(y); });
        *top = negative ? -std::fabs(*top) : std::fabs(*top);
        break;
      }
      case 7: w[col(rng)] = -4.0f; break;  // only a negative value reaches absmax
      case 8: {
        const int j = col(rng);
        set_absmax(2.0f);
        w[j] = 2.0f, w[(j + 1) % 32] = -2.0f;  // both signs reach it: the positive side's max / 7
        break;
      }
      case 9:
        std::fill(w.begin(), w.end(), 0.0f);
        if (b % 32 < 16) w[col(rng)] = -0.0f;
        break;
      case 10: {
        const float v = (u(rng) < 0.5f ? -1.0f : 1.0f) * log_uniform(1e-10f, 1e4f);
        std::fill(w.begin(), w.end(), 0.0f);
        w[col(rng)] = v;
        break;
      }
      case 11: std::fill(w.begin() + 1 + col(rng), w.end(), 0.0f); break;
      case 12:
      case 13: {
        // Ties: s an f16 value (normal or subnormal), absmax 7 s (or −8 s) so that the default scale is s itself;
        // the other values halfway between codes of s, or (case 13) of a random candidate's scale t: all of them, or
        // a few among multiples of t (then t tends to win, and its codes hold the ties).
        const float s = f16_to_f32(f32_to_f16(log_uniform(1e-7f, 1e3f)));
        const bool negative = b % 32 >= 16, few = b % 64 >= 32;
        std::uniform_int_distribution<int> factor(1, static_cast<int>(std::size(kQ4ScaleFactors)) - 1);
        const float t = (b % 16 == 12) ? s : f16_to_f32(f32_to_f16(s * kQ4ScaleFactors[factor(rng)]));
        std::uniform_int_distribution<int> code(-6, 5);
        for (float& v : w) v = (static_cast<float>(code(rng)) + (few && u(rng) < 0.85f ? 0.0f : 0.5f)) * t;
        w[col(rng)] = negative ? -8.0f * s : 7.0f * s;
        break;
      }
      case 14: {
        std::uniform_int_distribution<int> e(-12, 9);
        w = b % 32 < 16 ? sum_order_block(e(rng)) : division_block(e(rng));
        break;
      }
      default: break;  // plain N(0, 1)
    }
    all.insert(all.end(), w.begin(), w.end());
  }
  return all;
}

TEST(QuantizeQ4Blocks, MatchesScalarReferenceOnEveryInstructionSet) {
  std::mt19937 rng(19);
  const int n = 16 * 1024;
  const std::vector<float> w = q4_search_blocks(n, rng);
  std::vector<int8_t> want_q(n * 32);
  std::vector<uint16_t> want_s(n);
  ASSERT_EQ(quantize_blocks_q4_scalar(w.data(), n, want_q.data(), want_s.data()), n);
  std::uniform_int_distribution<int> start(0, n - 40);
  for (int64_t target : supported_targets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    std::vector<int8_t> q(n * 32, 99);
    std::vector<uint16_t> s(n, 0xFFFF);
    ASSERT_EQ(quantize_blocks_q4(w.data(), n, q.data(), s.data()), n);
    for (int b = 0; b < n; ++b) {
      ASSERT_EQ(s[b], want_s[b]) << "block " << b << " (kind " << b % 16 << ")";
      for (int j = 0; j < 32; ++j) ASSERT_EQ(q[b * 32 + j], want_q[b * 32 + j]) << "block " << b << " value " << j;
    }
    // Runs of every length up to 39 (partial batches of lanes) from random starts; nothing past the run written.
    for (int len = 1; len < 40; ++len) {
      const int b0 = start(rng);
      std::fill(q.begin(), q.end(), 99);
      std::fill(s.begin(), s.end(), 0xFFFF);
      ASSERT_EQ(quantize_blocks_q4(w.data() + b0 * 32, len, q.data(), s.data()), len);
      for (int b = 0; b < len; ++b) {
        ASSERT_EQ(s[b], want_s[b0 + b]) << "run " << len << " block " << b0 + b;
        for (int j = 0; j < 32; ++j) ASSERT_EQ(q[b * 32 + j], want_q[(b0 + b) * 32 + j]);
      }
      ASSERT_EQ(s[len], 0xFFFF);
      ASSERT_EQ(q[len * 32], 99);
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(QuantizeQ4Blocks, StopsAtTheFirstRejectedBlock) {
  std::mt19937 rng(23);
  const int n = 37;
  std::vector<float> w = q4_search_blocks(n, rng);
  std::vector<int8_t> want_q(n * 32);
  std::vector<uint16_t> want_s(n);
  ASSERT_EQ(quantize_blocks_q4_scalar(w.data(), n, want_q.data(), want_s.data()), n);
  w[13 * 32 + 5] = 5e5f;  // q4 scale 71429: past f16
  w[29 * 32 + 31] = std::nanf("");
  w[30 * 32] = INFINITY;
  for (int64_t target : supported_targets()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    for (int first : {0, 5, 14}) {  // the rejected block first in a batch of lanes, or further in
      std::vector<int8_t> q(n * 32);
      std::vector<uint16_t> s(n);
      const int expect = first <= 13 ? 13 : 29;
      ASSERT_EQ(quantize_blocks_q4(w.data() + first * 32, n - first, q.data(), s.data()), expect - first);
      for (int b = 0; b < expect - first; ++b) {
        ASSERT_EQ(s[b], want_s[first + b]) << "block " << first + b;
        for (int j = 0; j < 32; ++j) ASSERT_EQ(q[b * 32 + j], want_q[(first + b) * 32 + j]);
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
  EXPECT_EQ(quantize_blocks_q4_scalar(w.data(), n, want_q.data(), want_s.data()), 13);

  // Through quantize_matrix the error names the block, as for q8.
  std::vector<float> m(5 * 40, 0.5f);
  m[3 * 40 + 37] = std::nanf("");
  std::vector<uint8_t> data(quant_data_bytes(QuantType::Q4, 5, 40));
  try {
    quantize_matrix(QuantType::Q4, m.data(), 5, 40, data.data());
    ADD_FAILURE() << "no Error thrown";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), AllOf(HasSubstr("row 3"), HasSubstr("columns 32..63"), HasSubstr("column 5")));
  }
}

Weight2D make_weight(QuantType t, int64_t rows, int64_t cols, const std::vector<uint8_t>& data) {
  Weight2D w;
  w.dtype = quant_dtype(t);
  w.rows = rows;
  w.cols = cols;
  w.data = data.data();
  return w;
}

TEST(Quantize, RoundTripErrorBounds) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (QuantType t : {QuantType::Q8, QuantType::Q4}) {
    const int64_t rows = 37, cols = 203;
    std::vector<float> w(rows * cols);
    for (float& v : w) v = normal(rng) * 0.05f;
    std::vector<uint8_t> data(quant_data_bytes(t, rows, cols));
    quantize_matrix(t, w.data(), rows, cols, data.data());
    const Weight2D wq = make_weight(t, rows, cols, data);
    double worst_rel = 0.0;
    std::vector<float> row(cols + 1, 12345.0f);  // one guard value after the row: must stay untouched
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(wq, r, row.data());
      EXPECT_EQ(row[cols], 12345.0f);
      for (int64_t c = 0; c < cols; ++c) {
        const float s = f16_to_f32(quant_scale_bits(wq, r, c / 32));
        const double err = std::fabs(static_cast<double>(row[c]) - w[r * cols + c]);
        // Rounding error at most s/2, except q4 values clamped to 7 s or −8 s (the scale search may clip extremes).
        const double v = w[r * cols + c];
        const double bound = t == QuantType::Q4 && v > 7.5 * s    ? v - 7 * s
                             : t == QuantType::Q4 && v < -8.5 * s ? -v - 8 * s
                                                                   : s / 2;
        EXPECT_LE(err, bound * (1 + 1e-6)) << "row " << r << " col " << c;
        // Dequantized values are exactly s · q.
        const double q = row[c] / s;
        EXPECT_EQ(q, std::rint(q));
        double absmax = 0;
        for (int64_t k = c / 32 * 32; k < std::min<int64_t>(cols, c / 32 * 32 + 32); ++k)
          absmax = std::max<double>(absmax, std::fabs(w[r * cols + k]));
        worst_rel = std::max(worst_rel, err / absmax);
      }
    }
    // Relative to the block's largest magnitude: q8 <= 1/254; q4 <= 0.3, the extreme clipped to 7 · (0.7 · max / 7)
    // by the smallest scale the search tries (f16 scale rounding adds < 0.1%).
    EXPECT_LE(worst_rel, t == QuantType::Q8 ? 1.001 / 254 : 0.3 * 1.001) << quant_type_name(t);
    EXPECT_GT(worst_rel, t == QuantType::Q8 ? 0.5 / 254 : 0.5 / 14) << "suspiciously small error";
  }
}

TEST(Quantize, NamesAndSizes) {
  EXPECT_EQ(quant_type_from_name("q8"), QuantType::Q8);
  EXPECT_EQ(quant_type_from_name("q4"), QuantType::Q4);
  EXPECT_FALSE(quant_type_from_name("q3").has_value());
  EXPECT_STREQ(quant_type_name(QuantType::Q4), "q4");
  EXPECT_EQ(quant_type_of(DType::Q8), QuantType::Q8);
  EXPECT_FALSE(quant_type_of(DType::U8).has_value());
  // DeepSeek-V3's q_b_proj [24576, 1536]: 24576 · 48 blocks, each its codes and a 2-byte scale.
  EXPECT_EQ(quant_data_bytes(QuantType::Q8, 24576, 1536), 24576ll * 48 * (32 + 2));
  EXPECT_EQ(quant_data_bytes(QuantType::Q4, 24576, 1536), 24576ll * 48 * (16 + 2));
  EXPECT_EQ(quant_data_bytes(QuantType::Q8, 1, 1), 2 * 16 * 32 + 64);  // padded to one superblock of 16 rows
}

TEST(WeightBytes, EveryDtype) {
  Weight2D w;
  w.rows = 300;
  w.cols = 200;
  w.dtype = DType::F32;
  EXPECT_EQ(weight_bytes(w), 300 * 200 * 4);
  w.dtype = DType::BF16;
  EXPECT_EQ(weight_bytes(w), 300 * 200 * 2);
  w.dtype = DType::F16;
  EXPECT_EQ(weight_bytes(w), 300 * 200 * 2);
  w.dtype = DType::F8_E4M3;  // 128x128 blocks: 3 x 2 f32 scales
  EXPECT_EQ(weight_bytes(w), 300 * 200 + 3 * 2 * 4);
  w.block_rows = 64;
  w.block_cols = 32;  // 5 x 7 blocks
  EXPECT_EQ(weight_bytes(w), 300 * 200 + 5 * 7 * 4);
  w.dtype = DType::Q8;  // padded [304, 256] (columns to whole superblocks): 304 · 8 blocks of 32 bytes + 2-byte scales
  EXPECT_EQ(weight_bytes(w), 304 * 8 * (32 + 2));
  w.dtype = DType::Q4;
  EXPECT_EQ(weight_bytes(w), 304 * 8 * (16 + 2));
  w.rows = 5;
  w.cols = 40;  // padded [16, 64]
  EXPECT_EQ(weight_bytes(w), 16 * 2 * (16 + 2));
}

}  // namespace
}  // namespace whale
