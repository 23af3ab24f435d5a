#include "whale/kernels/matmul.h"

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include "whale/core/dtype.h"
#include "whale/core/thread_pool.h"
#include "whale/kernels/matmul_simd.h"
#include "whale/kernels/quant_format.h"
#include "whale/kernels/quantize.h"
#include "instruction_sets.h"
#include "matmul_test_util.h"

namespace whale {
namespace {

using namespace matmul_test;

TEST(Matmul, QuantizedQ8AndQ4) {
  std::mt19937 rng(10);
  ThreadPool pool(3);
  for (DType dtype : {DType::Q8, DType::Q4})
    for (int64_t m : {1, 2, 3, 4, 5, 9, 17})
      for (int64_t n : {1, 3, 4, 13, 16, 17, 130})
        for (int64_t k : {1, 31, 32, 33, 128, 200}) {
          SCOPED_TRACE(label(dtype, m, n, k, 0));
          check_quant_matmul(make_quant_weight(dtype, n, k, rng), m, rng, pool);
          if (HasFatalFailure()) return;
        }
}

// A token's q8/q4 result is the same bits whatever else is in the batch (1 token or tiles of up to 8 with any
// remainder, several tiles per row group), on every thread count, and on every instruction set (VNNI tiles or the
// portable integer path).
TEST(Matmul, QuantizedBitwiseIndependentOfBatchAndInstructionSet) {
  std::mt19937 rng(14);
  const std::vector<int64_t> targets = supported_targets();
  // k = 230 and 200: an even and an odd number of 32-column blocks (AMX tiles, from 17 tokens, take them in pairs).
  for (DType dtype : {DType::Q8, DType::Q4}) {
    for (int64_t k : {230, 200}) {
      const int64_t n = 45, m = 41;
      const TestWeight t = make_quant_weight(dtype, n, k, rng);
      const std::vector<float> x = random_activations(m * k, rng);
      std::vector<float> single(static_cast<size_t>(m * n));
      ThreadPool one(1);
      for (int64_t i = 0; i < m; ++i) matmul(t.w, x.data() + i * k, 1, single.data() + i * n, one);
      for (int64_t target : targets) {
        hwy::SetSupportedTargetsForTest(target);
        for (int threads : {1, 3}) {
          ThreadPool pool(threads);
          for (int64_t mm : {1, 7, 8, 9, 11, 12, 13, 16, 17, 19, 24, 29, 41}) {
            std::vector<float> y(static_cast<size_t>(mm * n), NAN);
            matmul(t.w, x.data(), mm, y.data(), pool);
            for (int64_t j = 0; j < mm * n; ++j)
              ASSERT_EQ(y[j], single[j]) << dtype_name(dtype) << " k " << k << " " << matmul_target_name()
                                         << " threads " << threads << " m " << mm << " output " << j;
          }
        }
      }
      hwy::SetSupportedTargetsForTest(0);
    }
  }
}

// q8/q4 read four row groups at once for one token (tile_quant_quad) and two where they can (tile_quant_pair: q8
// for 1-2 tokens, q4 in passes of up to 6 tokens, the later ones starting inside an 8-token activation tile): a pair
// or a four whose last group is partial, next to a pair or a group left alone, gives the same bits on every
// instruction set (the portable one reads one group at a time) at every token count, and writes no row past the end.
TEST(Matmul, QuantizedGroupPairsAndFoursMatchOneGroupAtATime) {
  std::mt19937 rng(16);
  const std::vector<int64_t> targets = supported_targets();
  for (DType dtype : {DType::Q8, DType::Q4}) {
    // One pair (16 + 13 rows); a pair and a lone group of 9; a four (3 × 16 + 13); a four, a pair and a lone 9.
    for (int64_t n : {29, 41, 61, 105}) {
      const int64_t k = 300;
      const TestWeight t = make_quant_weight(dtype, n, k, rng);
      for (int64_t m : {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 20}) {
        const std::vector<float> x = random_activations(m * k, rng);
        std::vector<std::vector<float>> results;
        for (int64_t target : targets) {
          hwy::SetSupportedTargetsForTest(target);
          ThreadPool one(1);
          std::vector<float> y(static_cast<size_t>(m * n + 16), -7.0f);
          matmul(t.w, x.data(), m, y.data(), one);
          for (int64_t j = m * n; j < m * n + 16; ++j) ASSERT_EQ(y[j], -7.0f) << "written past the end at " << j;
          results.push_back(y);
        }
        hwy::SetSupportedTargetsForTest(0);
        for (size_t i = 1; i < results.size(); ++i)
          for (int64_t j = 0; j < m * n; ++j)
            ASSERT_EQ(results[i][j], results[0][j]) << dtype_name(dtype) << " n " << n << " m " << m << " target "
                                                   << i << " output " << j;
      }
    }
  }
}

// Prompts large enough that their activations are quantized over the pool's threads (token tiles split between
// them) give the same bits as one token at a time on one thread.
TEST(Matmul, QuantizedPromptActivationsSplitBetweenThreads) {
  std::mt19937 rng(15);
  for (DType dtype : {DType::Q8, DType::Q4}) {
    const int64_t n = 20, k = 2050, m = 45;  // m·k over the split threshold; k not a multiple of 32
    const TestWeight t = make_quant_weight(dtype, n, k, rng);
    const std::vector<float> x = random_activations(m * k, rng);
    std::vector<float> single(static_cast<size_t>(m * n));
    ThreadPool one(1);
    for (int64_t i = 0; i < m; ++i) matmul(t.w, x.data() + i * k, 1, single.data() + i * n, one);
    for (int threads : {2, 3}) {
      ThreadPool pool(threads);
      for (int64_t mm : {33, 45}) {
        std::vector<float> y(static_cast<size_t>(mm * n), NAN);
        matmul(t.w, x.data(), mm, y.data(), pool);
        for (int64_t j = 0; j < mm * n; ++j)
          ASSERT_EQ(y[j], single[j]) << dtype_name(dtype) << " threads " << threads << " m " << mm << " output " << j;
      }
    }
  }
}

// Every instruction set (the AVX-512 VNNI target has its own decoder of the 16-row layout, for cols a multiple of 32),
// whole matrices and row ranges that start or end inside a row group; exact values, nothing written past the range.
TEST(DecodeRows, QuantizedMatchesSpec) {
  std::mt19937 rng(11);
  const std::vector<int64_t> targets = supported_targets();
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    for (DType dtype : {DType::Q8, DType::Q4})
      for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{13, 77}, {45, 96}, {32, 32}}) {
        const TestWeight t = make_quant_weight(dtype, rows, cols, rng);
        for (const auto& [r0, r1] : {std::pair<int64_t, int64_t>{0, rows}, {5, std::min<int64_t>(rows, 29)},
                                     {rows - 1, rows}, {std::min<int64_t>(rows, 16), rows}}) {
          std::vector<float> out(static_cast<size_t>((r1 - r0) * cols + 1), NAN);
          out.back() = 1234.5f;
          decode_rows(t.w, r0, r1, out.data());
          for (int64_t j = 0; j < (r1 - r0) * cols; ++j)
            ASSERT_EQ(out[j], static_cast<float>(t.values[r0 * cols + j]))
                << matmul_target_name() << " " << dtype_name(dtype) << " " << rows << "x" << cols << " rows " << r0
                << ".." << r1 << " element " << j;
          ASSERT_EQ(out.back(), 1234.5f);
        }
      }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// The q8/q4 code of W[r, c] (q, not the stored q + bias).
int quant_code(const Weight2D& w, int64_t r, int64_t c) {
  return stored_code(w.dtype == DType::Q8 ? QuantType::Q8 : QuantType::Q4, w.data, quant_padded_cols(w.cols), r, c);
}

// Scalar reference of x·W read in place from q8/q4 rows (docs/quantization.md, "x·W"), one token: y[c] +=
// Σ_i x[i]·W[16·g0 + i, c] over rows i < 16·groups (x[i] = 0 from i = n on), in runs of 8 row groups. Per run and
// 32-column block: a_i = x_i·s_i (f32), d = max|a| / 127, α_i = round(a_i·(127 / max|a|)), β_i = round((a_i −
// α_i·d)·(256·127 / max|a|)) within [−128, 127], S_c = Σ_i q_ic·(256·α_i + β_i) exactly, y[c] = fma(S_c, d / 256,
// y[c]); a block whose a holds a NaN or infinity makes its columns NaN, an all-zero one adds nothing.
void xw_twice_rounded_reference(const Weight2D& w, int64_t g0, int64_t groups, const float* x, int64_t n, float* y) {
  const int64_t blocks = quant_padded_cols(w.cols) / kQuantBlock;
  for (int64_t run = 0; run < groups; run += 8) {
    const int64_t rows = std::min<int64_t>(8, groups - run) * kQuantRowGroup, first = run * kQuantRowGroup;
    for (int64_t kb = 0; kb < blocks; ++kb) {
      std::vector<float> a(static_cast<size_t>(rows));
      float m = 0.0f;
      bool finite = true;
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t r = (g0 * kQuantRowGroup) + first + i;
        const float xi = first + i < n ? x[first + i] : 0.0f;
        a[i] = xi * f16_to_f32(quant_scale_bits(w, r, kb));
        finite = finite && std::isfinite(a[i]);
        m = std::max(m, std::fabs(a[i]));
      }
      const int64_t c1 = std::min(w.cols, (kb + 1) * kQuantBlock);
      if (!finite) {
        for (int64_t c = kb * kQuantBlock; c < c1; ++c) y[c] += NAN;
        continue;
      }
      if (m == 0.0f) continue;
      const float d = m / 127.0f, inv = 127.0f / m;
      std::vector<int64_t> weight(static_cast<size_t>(rows));
      for (int64_t i = 0; i < rows; ++i) {
        const float alpha = std::nearbyint(a[i] * inv);
        const float rest = std::fma(-alpha, d, a[i]);
        const float beta = std::clamp(std::nearbyint(rest * (inv * 256.0f)), -128.0f, 127.0f);
        weight[i] = 256 * static_cast<int64_t>(alpha) + static_cast<int64_t>(beta);
      }
      for (int64_t c = kb * kQuantBlock; c < c1; ++c) {
        int64_t sum = 0;
        for (int64_t i = 0; i < rows; ++i) sum += quant_code(w, g0 * kQuantRowGroup + first + i, c) * weight[i];
        y[c] = std::fma(static_cast<float>(sum), d * (1.0f / 256.0f), y[c]);
      }
    }
  }
}

// x·W over a slice of rows, as absorbed attention uses W_UK: y += Σ_i x[i] · W[r0 + i, :], against double sums over
// the spec-decoded values. Covers q8/q4 slices at 16-row boundaries (read in place) and elsewhere (decoded), partial
// row groups and column counts that are not multiples of 4 or 32, few and many tokens, and every instruction set;
// each token's result is bitwise the same as with that token alone, for any token count (a prompt chunk's queries
// must get what they get one by one). Read in place with VNNI, q8/q4 rows take x·s rounded twice to int8 (about 16
// bits): within Σ_i |q_ic|·d/256 more, d the step of the row's run and block (xw_twice_rounded_reference).
TEST(AddScaledWeightRows, MatchesDoubleSums) {
  std::mt19937 rng(15);
  const std::vector<int64_t> targets = supported_targets();
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    for (DType dtype : {DType::Q8, DType::Q4, DType::BF16})
      for (int64_t cols : {70, 64, 3})
        for (const auto& [r0, r1] : {std::pair<int64_t, int64_t>{16, 56}, {0, 16}, {32, 45}, {5, 29}})
          for (int64_t m : {1, 3, 6, 9, 17}) {
            const int64_t rows = 60;
            const TestWeight t = dtype == DType::BF16 ? make_weight(dtype, rows, cols, 0, rng)
                                                      : make_quant_weight(dtype, rows, cols, rng);
            const int64_t n = r1 - r0, ldy = cols + 2;
            const std::vector<float> x = random_activations(m * n, rng);
            std::vector<float> y(static_cast<size_t>(m * ldy));
            for (float& v : y) v = std::uniform_real_distribution<float>(-1, 1)(rng);
            const std::vector<float> y0 = y;
            add_scaled_weight_rows(t.w, r0, r1, x.data(), n, m, y.data(), ldy);
            // Each token's row bitwise as if it were alone: batched decode and chunked prompts rely on it.
            for (int64_t i = 0; i < m; ++i) {
              std::vector<float> alone(y0.begin() + i * ldy, y0.begin() + (i + 1) * ldy);
              add_scaled_weight_rows(t.w, r0, r1, x.data() + i * n, n, 1, alone.data(), ldy);
              ASSERT_EQ(0, std::memcmp(alone.data(), y.data() + i * ldy, sizeof(float) * static_cast<size_t>(ldy)))
                  << matmul_target_name() << " " << dtype_name(dtype) << " cols " << cols << " rows " << r0 << ".."
                  << r1 << " m " << m << " token " << i << " differs from the same token alone";
            }
            for (int64_t i = 0; i < m; ++i)
              for (int64_t c = 0; c < ldy; ++c) {
                const size_t j = static_cast<size_t>(i * ldy + c);
                if (c >= cols) {
                  ASSERT_EQ(y[j], y0[j]) << "column " << c << " past the weight's end was written";
                  continue;
                }
                double want = y0[j], abs = std::fabs(y0[j]), rounding = 0.0;
                for (int64_t r = 0; r < n; ++r) {
                  want += static_cast<double>(x[i * n + r]) * t.values[(r0 + r) * cols + c];
                  abs += std::fabs(static_cast<double>(x[i * n + r]) * t.values[(r0 + r) * cols + c]);
                }
                if (dtype != DType::BF16 && r0 % kQuantRowGroup == 0)
                  for (int64_t run0 = 0; run0 < n; run0 += 128) {
                    // Each run of 8 groups (from r0) and its step d in column c's block.
                    const int64_t run1 = std::min(n, run0 + 128), kb = c / kQuantBlock;
                    double m = 0.0;
                    for (int64_t r = run0; r < run1; ++r)
                      m = std::max(m, std::fabs(x[i * n + r] * static_cast<double>(
                                                    f16_to_f32(quant_scale_bits(t.w, r0 + r, kb)))));
                    for (int64_t r = run0; r < run1; ++r)
                      rounding += std::abs(quant_code(t.w, r0 + r, c)) * m / 127.0 / 256.0;
                  }
                ASSERT_LE(std::fabs(y[j] - want), 2 * gamma(n + 2.0, kF32Eps) * abs + rounding)
                    << matmul_target_name() << " " << dtype_name(dtype) << " cols " << cols << " rows " << r0 << ".."
                    << r1 << " m " << m << " y[" << i << "][" << c << "]";
              }
          }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// q8/q4 weights with activations rounded to about 16 bits (int8 twice): each activation is off by at most its 32-wide
// block's amax / 254² (half a step of the second rounding, whose step is at most half the first's / 127), plus f32
// rounding, so |y − exact| ≤ Σ_c |W[r, c]| · amax(block of c) / 254² + f32 rounding. On every instruction set, serial
// and over the pool, for decode-sized batches and larger ones; a token's result does not depend on m.
// q8/q4 x·W read in place (VNNI) is the scalar reference's twice-rounded integer product, bitwise: W_UK-sized slices
// (8 groups, 512 columns), partial runs and rows, columns not a multiple of 16, an all-zero block, a NaN.
TEST(AddScaledWeightRows, QuantInPlaceIsTheTwiceRoundedReference) {
  std::mt19937 rng(16);
  bool ran = false;
  for (DType dtype : {DType::Q8, DType::Q4})
    for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{256, 512}, {300, 70}, {40, 3}})
      for (const auto& [g0, groups] : {std::pair<int64_t, int64_t>{0, 8}, {8, 8}, {2, 11}, {1, 1}}) {
        if ((g0 + groups) * kQuantRowGroup > (rows + 15) / 16 * 16) continue;
        const TestWeight t = make_quant_weight(dtype, rows, cols, rng);
        const int64_t n = std::min(groups * kQuantRowGroup, rows - g0 * kQuantRowGroup);
        std::vector<float> x(static_cast<size_t>(groups * kQuantRowGroup), 0.0f);
        for (int64_t i = 0; i < n; ++i) x[i] = std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng);
        if (groups > 1) std::fill_n(x.begin(), 16, 0.0f);  // the first group zero: other groups set the step
        for (const bool nan : {false, true}) {
          if (nan) x[n - 1] = NAN;
          std::vector<float> y(static_cast<size_t>(cols));
          for (float& v : y) v = std::uniform_real_distribution<float>(-1, 1)(rng);
          std::vector<float> want = y;
          if (!simd::xw_quant(t.w, g0, groups, x.data(), groups * kQuantRowGroup, 1, y.data(), cols)) continue;
          ran = true;
          xw_twice_rounded_reference(t.w, g0, groups, x.data(), n, want.data());
          for (int64_t c = 0; c < cols; ++c) {
            if (std::isnan(want[c])) {
              ASSERT_TRUE(std::isnan(y[c])) << dtype_name(dtype) << " column " << c << " should be NaN";
              continue;
            }
            ASSERT_EQ(y[c], want[c]) << dtype_name(dtype) << " " << rows << "x" << cols << " groups " << g0 << "+"
                                     << groups << " column " << c;
          }
        }
      }
  if (!ran) GTEST_SKIP() << "no in-place x·W kernel on this CPU (it needs AVX-512 VNNI)";
}

TEST(MatmulWideActivations, WithinTwoRoundingsOfTheExactProduct) {
  std::mt19937 rng(17);
  ThreadPool pool(2);
  const std::vector<int64_t> targets = supported_targets();
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    for (DType dtype : {DType::Q8, DType::Q4})
      for (const auto& [n, k] : {std::pair<int64_t, int64_t>{45, 96}, {13, 77}, {16, 32}, {128, 64}})
        for (int64_t m : {1, 2, 4, 6, 9}) {
          const TestWeight t = make_quant_weight(dtype, n, k, rng);
          const std::vector<float> x = random_activations(m * k, rng);
          const Expected e = exact_product(t, x, m);
          std::vector<float> y(static_cast<size_t>(m * n), NAN), yp(y.size(), NAN), y1(static_cast<size_t>(n), NAN);
          matmul_serial_wide_activations(t.w, x.data(), m, y.data());
          matmul_wide_activations(t.w, x.data(), m, yp.data(), pool);
          matmul_serial_wide_activations(t.w, x.data() + (m - 1) * k, 1, y1.data());
          for (int64_t i = 0; i < m; ++i)
            for (int64_t r = 0; r < n; ++r) {
              double bound = 2 * gamma(k + 2.0, kF32Eps) * e.abs[i * n + r];
              for (int64_t c = 0; c < k; ++c) {
                float amax = 0.0f;
                for (int64_t cc = c / 32 * 32; cc < std::min(k, c / 32 * 32 + 32); ++cc)
                  amax = std::max(amax, std::fabs(x[i * k + cc]));
                bound += std::fabs(t.values[r * k + c]) * amax * (1.0 / (254.0 * 254.0) + 1e-6);
              }
              const int64_t j = i * n + r;
              ASSERT_LE(std::fabs(y[j] - e.y[j]), bound) << matmul_target_name() << " " << dtype_name(dtype) << " "
                                                          << n << "x" << k << " m " << m << " y[" << i << "][" << r << "]";
              ASSERT_EQ(y[j], yp[j]) << "serial and pooled differ at y[" << i << "][" << r << "]";
            }
          for (int64_t r = 0; r < n; ++r) ASSERT_EQ(y1[r], y[(m - 1) * n + r]) << "a token alone differs, row " << r;
        }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// The wide rounding (x, then the SIMD remainder x − code · scale) and the products after it give the same bits on
// every instruction set, the portable one included, so that a decode token's attention does not depend on the CPU.
TEST(MatmulWideActivations, BitwiseEqualOnEveryInstructionSet) {
  std::mt19937 rng(37);
  const std::vector<int64_t> targets = supported_targets();
  for (DType dtype : {DType::Q8, DType::Q4})
    for (const auto& [n, k] : {std::pair<int64_t, int64_t>{45, 96}, {13, 77}, {128, 512}})
      for (int64_t m : {1, 3, 16}) {
        const TestWeight t = make_quant_weight(dtype, n, k, rng);
        std::vector<float> x = random_activations(m * k, rng);
        for (int64_t c = 0; c < std::min<int64_t>(k, 32); ++c) x[c] = 0.0f;  // an all-zero block: remainder 0
        std::vector<float> first;
        for (int64_t target : targets) {
          hwy::SetSupportedTargetsForTest(target);
          std::vector<float> y(static_cast<size_t>(m * n), NAN);
          matmul_serial_wide_activations(t.w, x.data(), m, y.data());
          if (first.empty()) first = y;
          else
            ASSERT_EQ(0, std::memcmp(first.data(), y.data(), sizeof(float) * y.size()))
                << matmul_target_name() << " " << dtype_name(dtype) << " " << n << "x" << k << " m " << m;
        }
      }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace
}  // namespace whale
