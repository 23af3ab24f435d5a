#include "whale/kernels/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "whale/core/dtype.h"
#include "whale/core/error.h"

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

// Code of W[r, c] read back from a quantized matrix's bytes: q8 byte - 128, q4 nibble - 8.
int stored_code(QuantType t, const std::vector<uint8_t>& data, int64_t padded_cols, int64_t r, int64_t c) {
  const QuantCodePosition p = quant_code_position(t, padded_cols, r, c);
  if (t == QuantType::Q8) return data[p.byte] - 128;
  return ((data[p.byte] >> (p.high_nibble ? 4 : 0)) & 0xF) - 8;
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
  std::vector<uint16_t> scales(quant_scale_count(5, 40));
  try {
    quantize_matrix(QuantType::Q8, m.data(), 5, 40, data.data(), scales.data());
    ADD_FAILURE() << "no Error thrown";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), AllOf(HasSubstr("row 3"), HasSubstr("columns 32..63"), HasSubstr("column 5")));
  }
}

// Padding: a [5, 40] matrix is stored as [16, 64]: rows 5..15 and columns 40..63 are zero blocks / zero codes.
TEST(Quantize, PaddingRowsAndColumnsAndLayout) {
  for (QuantType t : {QuantType::Q8, QuantType::Q4}) {
    const int64_t rows = 5, cols = 40;
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> w(rows * cols);
    for (float& v : w) v = normal(rng);
    const int bb = quant_block_bytes(t);
    EXPECT_EQ(quant_data_shape(t, rows, cols), (std::vector<int64_t>{1, 2, 16 * bb}));
    EXPECT_EQ(quant_scale_shape(rows, cols), (std::vector<int64_t>{1, 2, 16}));
    std::vector<uint8_t> data(quant_data_bytes(t, rows, cols), 0xAB);
    std::vector<uint16_t> scales(quant_scale_count(rows, cols), 0xABCD);
    ASSERT_EQ(data.size(), static_cast<size_t>(16 * 64 * bb / 32));
    quantize_matrix(t, w.data(), rows, cols, data.data(), scales.data());

    for (int64_t r = 0; r < 16; ++r)
      for (int64_t kb = 0; kb < 2; ++kb) {
        // Each block, quantized on its own from the zero-padded row, lands where quant_code_position says.
        std::vector<float> block(32, 0.0f);
        for (int j = 0; j < 32; ++j)
          if (r < rows && kb * 32 + j < cols) block[j] = w[r * cols + kb * 32 + j];
        int8_t expect[32];
        const uint16_t h = quantize_block(t, block.data(), expect);
        EXPECT_EQ(scales[quant_scale_index(64, r, kb)], h);
        EXPECT_EQ(quant_scale_index(64, r, kb), kb * 16 + r);
        for (int j = 0; j < 32; ++j) {
          EXPECT_EQ(stored_code(t, data, 64, r, kb * 32 + j), expect[j]) << "row " << r << " col " << kb * 32 + j;
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
    std::vector<uint16_t> scales2(scales.size(), 0);
    quantize_matrix(t, w.data(), rows, cols, data2.data(), scales2.data());
    EXPECT_EQ(data2, data);
    EXPECT_EQ(scales2, scales);
  }
}

Weight2D make_weight(QuantType t, int64_t rows, int64_t cols, const std::vector<uint8_t>& data,
                     const std::vector<uint16_t>& scales) {
  Weight2D w;
  w.dtype = quant_dtype(t);
  w.rows = rows;
  w.cols = cols;
  w.data = data.data();
  w.qscale = scales.data();
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
    std::vector<uint16_t> scales(quant_scale_count(rows, cols));
    quantize_matrix(t, w.data(), rows, cols, data.data(), scales.data());
    const Weight2D wq = make_weight(t, rows, cols, data, scales);
    const int64_t pc = quant_padded_cols(cols);
    double worst_rel = 0.0;
    std::vector<float> row(cols + 1, 12345.0f);  // one guard value after the row: must stay untouched
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_row(wq, r, row.data());
      EXPECT_EQ(row[cols], 12345.0f);
      for (int64_t c = 0; c < cols; ++c) {
        const float s = f16_to_f32(scales[quant_scale_index(pc, r, c / 32)]);
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
  // DeepSeek-V3's q_b_proj [24576, 1536]: 24576 · 48 blocks.
  EXPECT_EQ(quant_data_bytes(QuantType::Q8, 24576, 1536), 24576ll * 1536);
  EXPECT_EQ(quant_data_bytes(QuantType::Q4, 24576, 1536), 24576ll * 1536 / 2);
  EXPECT_EQ(quant_scale_count(24576, 1536), 24576ll * 48);
  EXPECT_EQ(quant_data_bytes(QuantType::Q8, 1, 1), 16 * 32);  // padded to one 16-row group block
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
  w.dtype = DType::Q8;  // padded [304, 224]: 304 · 7 blocks of 32 bytes + 2-byte scales
  EXPECT_EQ(weight_bytes(w), 304 * 7 * (32 + 2));
  w.dtype = DType::Q4;
  EXPECT_EQ(weight_bytes(w), 304 * 7 * (16 + 2));
  w.rows = 5;
  w.cols = 40;  // padded [16, 64]
  EXPECT_EQ(weight_bytes(w), 16 * 2 * (16 + 2));
}

}  // namespace
}  // namespace whale
