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
#include "whale/kernels/matmul_amx.h"
#include "whale/kernels/quant_format.h"
#include "instruction_sets.h"

namespace whale {
namespace {

constexpr double kF32Eps = 0x1p-24;  // unit roundoff u of f32 (round to nearest)
constexpr double kF64Eps = 0x1p-53;  // unit roundoff of double

// Decoders written from the format definitions (value = integer · 2^power), independent of core/dtype.cc.
double decode_bf16(uint16_t h) {  // 1 sign, 8 exponent (bias 127), 7 mantissa bits
  const int sign = h >> 15, exp = (h >> 7) & 0xFF, mant = h & 0x7F;
  const double integer = exp == 0 ? mant : 128 + mant;
  return (sign ? -1.0 : 1.0) * std::ldexp(integer, (exp == 0 ? 1 : exp) - 127 - 7);
}
double decode_f16(uint16_t h) {  // 1 sign, 5 exponent (bias 15), 10 mantissa bits
  const int sign = h >> 15, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  const double integer = exp == 0 ? mant : 1024 + mant;
  return (sign ? -1.0 : 1.0) * std::ldexp(integer, (exp == 0 ? 1 : exp) - 15 - 10);
}
double decode_e4m3(uint8_t v) {  // 1 sign, 4 exponent (bias 7), 3 mantissa bits (deepseek-spec §3.3)
  const int sign = v >> 7, exp = (v >> 3) & 0xF, mant = v & 0x7;
  const double integer = exp == 0 ? mant : 8 + mant;
  return (sign ? -1.0 : 1.0) * std::ldexp(integer, (exp == 0 ? 1 : exp) - 7 - 3);
}

// A random weight in its stored form, at a chosen misalignment, plus its exact values W[r][c] (block scale applied)
// computed in double by the decoders above.
struct TestWeight {
  Weight2D w;
  std::vector<uint8_t> storage;
  std::vector<float> scales;
  std::vector<double> values;  // [rows, cols]
};

TestWeight make_weight(DType dtype, int64_t rows, int64_t cols, size_t misalign, std::mt19937& rng,
                       int block_rows = 128, int block_cols = 128) {
  TestWeight t;
  const size_t elem = dtype == DType::F32 ? 4 : dtype == DType::F8_E4M3 ? 1 : 2;
  const size_t n = static_cast<size_t>(rows * cols);
  t.storage.assign(n * elem + misalign, 0xAB);
  uint8_t* data = t.storage.data() + misalign;
  t.values.resize(n);
  std::uniform_int_distribution<int> bit(0, 1);
  for (size_t i = 0; i < n; ++i) {
    switch (dtype) {
      case DType::F32: {
        const float v = std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng);
        std::memcpy(data + 4 * i, &v, 4);
        t.values[i] = v;
        break;
      }
      case DType::BF16: {
        // Exponents 117..136: magnitudes 2^-10 .. 2^10, no inf/NaN.
        const uint16_t code = static_cast<uint16_t>(bit(rng) << 15 |
                                                    std::uniform_int_distribution<int>(117, 136)(rng) << 7 |
                                                    std::uniform_int_distribution<int>(0, 0x7F)(rng));
        data[2 * i] = code & 0xFF;
        data[2 * i + 1] = code >> 8;
        t.values[i] = decode_bf16(code);
        break;
      }
      case DType::F16: {
        // Every finite code: exponent field 0..30 (subnormals included, inf/NaN excluded).
        const uint16_t code = static_cast<uint16_t>(bit(rng) << 15 |
                                                    std::uniform_int_distribution<int>(0, 30)(rng) << 10 |
                                                    std::uniform_int_distribution<int>(0, 0x3FF)(rng));
        data[2 * i] = code & 0xFF;
        data[2 * i + 1] = code >> 8;
        t.values[i] = decode_f16(code);
        break;
      }
      case DType::F8_E4M3: {
        uint8_t code;
        do code = static_cast<uint8_t>(std::uniform_int_distribution<int>(0, 255)(rng));
        while ((code & 0x7F) == 0x7F);  // NaN
        data[i] = code;
        t.values[i] = decode_e4m3(code);
        break;
      }
      default:
        ADD_FAILURE() << "unsupported dtype";
    }
  }
  t.w.dtype = dtype;
  t.w.rows = rows;
  t.w.cols = cols;
  t.w.data = data;
  if (dtype == DType::F8_E4M3) {
    const int64_t grid_rows = (rows + block_rows - 1) / block_rows, grid_cols = (cols + block_cols - 1) / block_cols;
    t.scales.resize(static_cast<size_t>(grid_rows * grid_cols));
    // Scales like a real weight_scale_inv (≈ max|w| / 448): a random mantissa times 2^-12 .. 2^-4.
    for (float& s : t.scales)
      s = std::ldexp(std::uniform_real_distribution<float>(1.0f, 2.0f)(rng),
                     std::uniform_int_distribution<int>(-12, -4)(rng));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        t.values[r * cols + c] *= t.scales[(r / block_rows) * grid_cols + c / block_cols];
    t.w.block_scale = t.scales.data();
    t.w.block_rows = block_rows;
    t.w.block_cols = block_cols;
  }
  return t;
}

std::vector<float> random_activations(int64_t n, std::mt19937& rng) {
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
  return x;
}

// Bounds on |computed − exact| for y[i][r] = Σ_c W[r][c]·x[i][c], with S = Σ_c |W[r][c]·x[i][c]|:
// * matmul: an f32 dot product of K terms (any summation order, SIMD partial sums included) is within γ_K·S of the
//   exact value, γ_n = n·u / (1 − n·u) (Higham, Accuracy and Stability, §3.1); decoding an FP8 weight multiplies
//   by its block scale in f32, one more rounding per term: γ_{K+1}·S.
// * matmul_reference: products and sums in double, γ^(double)_{K+1}·S, then one rounding to f32: u·|y|.
// The "exact" value is itself summed in double, so each bound gains γ^(double)_{K+1}·S for the expectation's error.
double gamma(double n, double u) { return n * u / (1.0 - n * u); }

struct Expected {
  std::vector<double> y;    // exact (to double precision) products
  std::vector<double> abs;  // S for each output
};

Expected exact_product(const TestWeight& t, const std::vector<float>& x, int64_t m) {
  const int64_t n = t.w.rows, k = t.w.cols;
  Expected e{std::vector<double>(static_cast<size_t>(m * n)), std::vector<double>(static_cast<size_t>(m * n))};
  for (int64_t i = 0; i < m; ++i)
    for (int64_t r = 0; r < n; ++r) {
      double acc = 0.0, abs = 0.0;
      for (int64_t c = 0; c < k; ++c) {
        const double term = t.values[r * k + c] * static_cast<double>(x[i * k + c]);
        acc += term;
        abs += std::fabs(term);
      }
      e.y[i * n + r] = acc;
      e.abs[i * n + r] = abs;
    }
  return e;
}

std::string label(DType dtype, int64_t m, int64_t n, int64_t k, size_t misalign, int br = 0, int bc = 0) {
  std::string s = std::string(dtype_name(dtype)) + " M " + std::to_string(m) + " N " +
                  std::to_string(n) + " K " + std::to_string(k) + " misalign " + std::to_string(misalign);
  if (br) s += " block " + std::to_string(br) + "x" + std::to_string(bc);
  return s;
}

// Checks matmul and matmul_reference against the exact product and each other, and matmul's row independence.
void check_matmul(const TestWeight& t, int64_t m, std::mt19937& rng, ThreadPool& pool) {
  const int64_t n = t.w.rows, k = t.w.cols;
  const std::vector<float> x = random_activations(m * k, rng);
  const Expected e = exact_product(t, x, m);
  std::vector<float> y(static_cast<size_t>(m * n), NAN), y_ref(static_cast<size_t>(m * n), NAN);
  matmul(t.w, x.data(), m, y.data(), pool);
  matmul_reference(t.w, x.data(), m, y_ref.data());
  const double g_f32 = gamma(static_cast<double>(k + 1), kF32Eps), g_f64 = gamma(static_cast<double>(k + 1), kF64Eps);
  for (int64_t j = 0; j < m * n; ++j) {
    const double expectation_error = g_f64 * e.abs[j];
    const double tol_matmul = g_f32 * e.abs[j] + expectation_error;
    const double tol_ref = kF32Eps * std::fabs(e.y[j]) + g_f64 * e.abs[j] + expectation_error;
    ASSERT_LE(std::fabs(y[j] - e.y[j]), tol_matmul) << "matmul y[" << j / n << "][" << j % n << "]";
    ASSERT_LE(std::fabs(y_ref[j] - e.y[j]), tol_ref) << "matmul_reference y[" << j / n << "][" << j % n << "]";
    ASSERT_LE(std::fabs(static_cast<double>(y[j]) - y_ref[j]), tol_matmul + tol_ref) << "matmul vs reference " << j;
  }
  // "A row's result does not depend on M": each row alone gives bit-identical output.
  for (int64_t i = 0; i < m; ++i) {
    std::vector<float> row(static_cast<size_t>(n));
    matmul(t.w, x.data() + i * k, 1, row.data(), pool);
    for (int64_t r = 0; r < n; ++r) ASSERT_EQ(row[r], y[i * n + r]) << "row " << i << " col " << r;
  }
}

const int64_t kM[] = {1, 2, 5};
const int64_t kN[] = {1, 3, 8, 13, 130};
const int64_t kK[] = {1, 2, 7, 31, 128, 129, 258};
const size_t kMisalign[] = {0, 1, 3};

TEST(Matmul, F32) {
  std::mt19937 rng(1);
  ThreadPool pool(3);
  for (int64_t m : kM)
    for (int64_t n : kN)
      for (int64_t k : kK)
        for (size_t mis : kMisalign) {
          SCOPED_TRACE(label(DType::F32, m, n, k, mis));
          check_matmul(make_weight(DType::F32, n, k, mis, rng), m, rng, pool);
          if (HasFatalFailure()) return;
        }
}

TEST(Matmul, BF16) {
  std::mt19937 rng(2);
  ThreadPool pool(3);
  for (int64_t m : kM)
    for (int64_t n : kN)
      for (int64_t k : kK)
        for (size_t mis : kMisalign) {
          SCOPED_TRACE(label(DType::BF16, m, n, k, mis));
          check_matmul(make_weight(DType::BF16, n, k, mis, rng), m, rng, pool);
          if (HasFatalFailure()) return;
        }
}

TEST(Matmul, F16) {
  std::mt19937 rng(3);
  ThreadPool pool(3);
  for (int64_t m : kM)
    for (int64_t n : kN)
      for (int64_t k : kK)
        for (size_t mis : kMisalign) {
          SCOPED_TRACE(label(DType::F16, m, n, k, mis));
          check_matmul(make_weight(DType::F16, n, k, mis, rng), m, rng, pool);
          if (HasFatalFailure()) return;
        }
}

TEST(Matmul, F8E4M3BlockScaled) {
  // 128×128 is the DeepSeek-V3 block (deepseek-spec §3.3); the small blocks put partial edge blocks in both
  // directions into every shape below.
  const std::pair<int, int> blocks[] = {{128, 128}, {4, 3}, {1, 1}, {5, 2}, {3, 128}};
  std::mt19937 rng(4);
  ThreadPool pool(3);
  for (const auto& [br, bc] : blocks)
    for (int64_t m : kM)
      for (int64_t n : kN)
        for (int64_t k : kK)
          for (size_t mis : kMisalign) {
            SCOPED_TRACE(label(DType::F8_E4M3, m, n, k, mis, br, bc));
            check_matmul(make_weight(DType::F8_E4M3, n, k, mis, rng, br, bc), m, rng, pool);
            if (HasFatalFailure()) return;
          }
}

TEST(Matmul, LargerShapesUseSeveralThreads) {
  // Enough rows that the 8-row tiles are spread over the pool; a partial last tile (N % 8 != 0), a partial last
  // 128-block in both directions (like kv_a_proj_with_mqa's 576 rows), and a K of no particular factor.
  std::mt19937 rng(5);
  ThreadPool pool(3);
  // 9 and 29 tokens take the panel path (tiles of 6 tokens and a partial one), whose K chunks (512) must leave each
  // row's result bitwise that of 1 token.
  for (DType dtype : {DType::F32, DType::BF16, DType::F16, DType::F8_E4M3})
    for (int64_t m : {3, 9, 29}) {
      SCOPED_TRACE(label(dtype, m, 581, 1031, 1));
      check_matmul(make_weight(dtype, 581, 1031, 1, rng), m, rng, pool);
    }
}

TEST(Matmul, SameResultForEveryPoolSize) {
  std::mt19937 rng(6);
  const TestWeight t = make_weight(DType::F8_E4M3, 203, 517, 1, rng);
  const std::vector<float> x = random_activations(4 * 517, rng);
  std::vector<float> first;
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    std::vector<float> y(4 * 203);
    matmul(t.w, x.data(), 4, y.data(), pool);
    if (first.empty()) first = y;
    for (size_t j = 0; j < y.size(); ++j) ASSERT_EQ(y[j], first[j]) << threads << " threads, output " << j;
  }
}

TEST(Matmul, ZeroRowsOfActivations) {
  std::mt19937 rng(7);
  ThreadPool pool(2);
  const TestWeight t = make_weight(DType::BF16, 16, 8, 0, rng);
  float sentinel = 42.0f;
  matmul(t.w, nullptr, 0, &sentinel, pool);
  matmul_reference(t.w, nullptr, 0, &sentinel);
  EXPECT_EQ(sentinel, 42.0f);
}

TEST(DecodeRows, MatchesIndependentDecoder) {
  // Decoding is exact for F32/BF16/F16. For FP8, code × scale is one f32 multiplication of two f32 values, whose
  // exact product fits in a double: the result is that product rounded once to f32.
  std::mt19937 rng(8);
  for (DType dtype : {DType::F32, DType::BF16, DType::F16, DType::F8_E4M3})
    for (size_t mis : {0, 1, 2, 3})
      for (const auto& [br, bc] : {std::pair{128, 128}, std::pair{4, 3}, std::pair{1, 5}}) {
        const int64_t rows = 37, cols = 133;
        const TestWeight t = make_weight(dtype, rows, cols, mis, rng, br, bc);
        const std::vector<std::pair<int64_t, int64_t>> ranges = {{0, rows}, {0, 1}, {5, 6}, {3, 11}, {36, 37}, {7, 7}};
        for (const auto& [r0, r1] : ranges) {
          SCOPED_TRACE(label(dtype, 0, rows, cols, mis, br, bc) + " rows " + std::to_string(r0) + ".." +
                       std::to_string(r1));
          std::vector<float> out(static_cast<size_t>((r1 - r0) * cols + 1), NAN);
          out.back() = 1234.5f;  // guard: nothing may be written past (r1 - r0) rows
          decode_rows(t.w, r0, r1, out.data());
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t c = 0; c < cols; ++c)
              ASSERT_EQ(out[(r - r0) * cols + c], static_cast<float>(t.values[r * cols + c])) << r << "," << c;
          ASSERT_EQ(out.back(), 1234.5f);
        }
        if (dtype != DType::F8_E4M3) break;  // block sizes only matter for FP8
      }
}

TEST(Dot, MatchesDouble) {
  std::mt19937 rng(9);
  for (int64_t n : {0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 64, 65, 1000, 4097}) {
    const std::vector<float> a = random_activations(n, rng), b = random_activations(n, rng);
    double exact = 0.0, abs = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      exact += static_cast<double>(a[i]) * b[i];
      abs += std::fabs(static_cast<double>(a[i]) * b[i]);
    }
    // f32 dot product of n terms: |error| ≤ γ_n · Σ|a_i b_i|; the double reference adds γ^(double)_n · Σ|a_i b_i|.
    const double tol = (gamma(static_cast<double>(n), kF32Eps) + gamma(static_cast<double>(n), kF64Eps)) * abs;
    EXPECT_LE(std::fabs(dot(a.data(), b.data(), n) - exact), tol) << "n " << n;
  }
}

// ---- whale q8 / q4 (kernels/quant_format.h) ----

// Random codes and f16 scales laid out as the format specifies, padding (rows to 16, cols to 64) holding the zero
// code; values[r][c] decoded here from the spec, independently of the library: row group r/16 is a run of
// superblocks, each two group blocks of 16·B bytes (blocks 2j and 2j + 1) and then their 32 f16 scales (block 2j's
// rows 0..15, then block 2j + 1's); in a group block, line j/4 (of column j within the block; q4: j%16) holds 4 bytes
// per row, row r%16's at (line·16 + r%16)·4, column j%4 within them; q4 columns j ≥ 16 are high nibbles.
TestWeight make_quant_weight(DType dtype, int64_t rows, int64_t cols, std::mt19937& rng) {
  TestWeight t;
  const bool q8 = dtype == DType::Q8;
  const int64_t pr = (rows + 15) / 16 * 16, pc = (cols + 63) / 64 * 64, blocks = pc / 32;
  const int block_bytes = q8 ? 32 : 16;
  const int64_t super_bytes = 2 * 16 * block_bytes + 64, group_bytes = blocks / 2 * super_bytes;
  t.storage.assign(static_cast<size_t>(pr / 16 * group_bytes), 0);
  uint8_t* codes = t.storage.data();
  t.values.assign(static_cast<size_t>(rows * cols), 0.0);
  std::uniform_int_distribution<int> code8(1, 255), code4(0, 15), mant(0, 0x3FF), expo(5, 20);
  for (int64_t r = 0; r < pr; ++r)
    for (int64_t kb = 0; kb < blocks; ++kb) {
      uint8_t* super = codes + r / 16 * group_bytes + kb / 2 * super_bytes;
      const uint16_t sbits = static_cast<uint16_t>(expo(rng) << 10 | mant(rng));
      uint8_t* scale = super + 2 * 16 * block_bytes + (kb % 2 * 16 + r % 16) * 2;
      scale[0] = static_cast<uint8_t>(sbits & 0xFF);
      scale[1] = static_cast<uint8_t>(sbits >> 8);
      uint8_t* block = super + kb % 2 * 16 * block_bytes;
      for (int j = 0; j < 32; ++j) {
        const int64_t c = kb * 32 + j;
        const bool real = r < rows && c < cols;
        const int code = real ? (q8 ? code8(rng) : code4(rng)) : (q8 ? 128 : 8);
        const int jj = q8 ? j : j % 16;
        uint8_t& byte = block[(jj / 4 * 16 + r % 16) * 4 + jj % 4];
        if (q8) byte = static_cast<uint8_t>(code);
        else if (j < 16) byte = static_cast<uint8_t>((byte & 0xF0) | code);
        else byte = static_cast<uint8_t>((byte & 0x0F) | code << 4);
        if (real) t.values[r * cols + c] = (code - (q8 ? 128 : 8)) * decode_f16(sbits);
      }
    }
  t.w.dtype = dtype;
  t.w.rows = rows;
  t.w.cols = cols;
  t.w.data = codes;
  return t;
}

// q8/q4 weights multiply activations quantized per 32-block to int8 (scale = absmax/127, so each value moves by at
// most half a step), for any number of tokens. The bound allows the quantization error, Σ_blocks (absmax/254)·Σ|w|,
// plus f32 rounding of the products and sums.
void check_quant_matmul(const TestWeight& t, int64_t m, std::mt19937& rng, ThreadPool& pool) {
  const int64_t n = t.w.rows, k = t.w.cols;
  const std::vector<float> x = random_activations(m * k, rng);
  const Expected e = exact_product(t, x, m);
  std::vector<float> y(static_cast<size_t>(m * n), NAN), y_ref(static_cast<size_t>(m * n), NAN);
  matmul(t.w, x.data(), m, y.data(), pool);
  matmul_reference(t.w, x.data(), m, y_ref.data());
  const double g = gamma(static_cast<double>(k + 4), kF32Eps);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t r = 0; r < n; ++r) {
      double quant_err = 0.0;
      for (int64_t c0 = 0; c0 < k; c0 += 32) {
          double amax = 0.0, wabs = 0.0;
        for (int64_t c = c0; c < std::min(k, c0 + 32); ++c) {
          amax = std::max(amax, std::fabs(static_cast<double>(x[i * k + c])));
          wabs += std::fabs(t.values[r * k + c]);
        }
        quant_err += amax / 254.0 * wabs * 1.0001;
      }
      const int64_t j = i * n + r;
      // The quantized path's S is at most the float S plus the quantization error.
      const double tol = g * (e.abs[j] + quant_err) * 2 + quant_err;
      ASSERT_LE(std::fabs(y[j] - e.y[j]), tol) << "matmul y[" << i << "][" << r << "]";
      ASSERT_LE(std::fabs(y_ref[j] - e.y[j]), kF32Eps * std::fabs(e.y[j]) + 2 * gamma(k + 1.0, kF64Eps) * e.abs[j])
          << "matmul_reference y[" << i << "][" << r << "]";
    }
}

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

// An exact job keeps BF16 weights in f32 arithmetic at prompt sizes too (where the CPU has AMX-BF16, a plain job
// rounds the activations to split bf16 there): a token's result is the same bits in any batch.
TEST(MatmulBatch, ExactBF16JobsDoNotDependOnBatching) {
  std::mt19937 rng(17);
  ThreadPool pool(2);
  const int64_t n = 16, k = 256, m = 40;
  const TestWeight t = make_weight(DType::BF16, n, k, 0, rng);
  const std::vector<float> x = random_activations(m * k, rng);
  std::vector<float> single(static_cast<size_t>(m * n)), y(static_cast<size_t>(m * n), NAN);
  for (int64_t i = 0; i < m; ++i) {
    const MatmulJob one{t.w, x.data() + i * k, 1, single.data() + i * n, /*exact=*/true};
    matmul_batch({&one, 1}, pool);
  }
  const MatmulJob all{t.w, x.data(), m, y.data(), /*exact=*/true};
  matmul_batch({&all, 1}, pool);
  for (int64_t j = 0; j < m * n; ++j) ASSERT_EQ(y[j], single[j]) << "y[" << j / n << "][" << j % n << "]";
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

// One and two tokens over rows longer than the decode tiles' 2 KB prefetch distance in every float format (2600
// elements: 2.6-10.4 KB), so that each 8-row tile switches its distance to the next tile within the row; 19 rows: two
// whole tiles and a partial one.
TEST(Matmul, DecodeTilesOverLongRows) {
  std::mt19937 rng(6);
  ThreadPool pool(2);
  for (DType dtype : {DType::F32, DType::BF16, DType::F16, DType::F8_E4M3})
    for (int64_t m : {1, 2}) {
      SCOPED_TRACE(label(dtype, m, 19, 2600, 0));
      check_matmul(make_weight(dtype, 19, 2600, 0, rng), m, rng, pool);
      if (HasFatalFailure()) return;
    }
}

// Every instruction set Highway compiled and this CPU supports (AVX-512 VNNI, AVX-512, AVX2, SSE4, ... or NEON)
// passes the same checks: the scalar reference is the oracle for each SIMD path, not just the one dispatched.
TEST(Matmul, EveryInstructionSet) {
  const std::vector<int64_t> targets = supported_targets();
  ASSERT_FALSE(targets.empty());
  std::mt19937 rng(12);
  ThreadPool pool(2);
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(std::string("target ") + matmul_target_name());
    for (DType dtype : {DType::F32, DType::BF16, DType::F16, DType::F8_E4M3})
      for (int64_t m : {1, 3, 6}) {
        check_matmul(make_weight(dtype, 21, 67, 1, rng, 128, 32), m, rng, pool);
        if (HasFatalFailure()) break;
      }
    for (DType dtype : {DType::Q8, DType::Q4})
      for (int64_t m : {1, 4, 6}) {
        check_quant_matmul(make_quant_weight(dtype, 21, 100, rng), m, rng, pool);
        if (HasFatalFailure()) break;
      }
    if (HasFatalFailure()) break;
  }
  hwy::SetSupportedTargetsForTest(0);
}

// x·W over a slice of rows, as absorbed attention uses W_UK: y += Σ_i x[i] · W[r0 + i, :], against double sums over
// the spec-decoded values. Covers q8/q4 slices at 16-row boundaries (read in place) and elsewhere (decoded), partial
// row groups and column counts that are not multiples of 4 or 32, few and many tokens, and every instruction set;
// each token's result is bitwise the same as with that token alone, for any token count (a prompt chunk's queries
// must get what they get one by one).
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
                double want = y0[j], abs = std::fabs(y0[j]);
                for (int64_t r = 0; r < n; ++r) {
                  want += static_cast<double>(x[i * n + r]) * t.values[(r0 + r) * cols + c];
                  abs += std::fabs(static_cast<double>(x[i * n + r]) * t.values[(r0 + r) * cols + c]);
                }
                ASSERT_LE(std::fabs(y[j] - want), 2 * gamma(n + 2.0, kF32Eps) * abs)
                    << matmul_target_name() << " " << dtype_name(dtype) << " cols " << cols << " rows " << r0 << ".."
                    << r1 << " m " << m << " y[" << i << "][" << c << "]";
              }
          }
  }
  hwy::SetSupportedTargetsForTest(0);
}

// BF16 weights times a prompt-sized batch (amx::kBf16MinTokens or more tokens, k a multiple of 32) run on AMX tiles
// where the CPU has them, with each activation split into two bf16: every product is then accurate to about 2^-16
// relative (|x - hi - lo| <= 2^-17 |x|), accumulated in f32. Covers partial row groups, partial token tiles, an odd
// number of token tiles, and rows sliced off a larger weight; the same bound holds on CPUs without AMX.
TEST(Matmul, BF16PromptBatches) {
  std::mt19937 rng(16);
  ThreadPool pool(2);
  for (int64_t m : {amx::kBf16MinTokens, int64_t{47}, int64_t{70}})
    for (int64_t n : {16, 37})
      for (int64_t k : {32, 96, 2048}) {
        SCOPED_TRACE(label(DType::BF16, m, n, k, 0) + (amx::bf16_usable(k) ? " (AMX)" : ""));
        const TestWeight t = make_weight(DType::BF16, n, k, 0, rng);
        const std::vector<float> x = random_activations(m * k, rng);
        const Expected e = exact_product(t, x, m);
        std::vector<float> y(static_cast<size_t>(m * n), NAN);
        matmul(t.w, x.data(), m, y.data(), pool);
        for (int64_t j = 0; j < m * n; ++j)
          ASSERT_LE(std::fabs(y[j] - e.y[j]), (0x1p-16 + gamma(k + 2.0, kF32Eps)) * e.abs[j])
              << "y[" << j / n << "][" << j % n << "]";
      }
}

// q8/q4 weights with activations rounded to about 16 bits (int8 twice): each activation is off by at most its 32-wide
// block's amax / 254² (half a step of the second rounding, whose step is at most half the first's / 127), plus f32
// rounding, so |y − exact| ≤ Σ_c |W[r, c]| · amax(block of c) / 254² + f32 rounding. On every instruction set, serial
// and over the pool, for decode-sized batches and larger ones; a token's result does not depend on m.
TEST(MatmulWideActivations, WithinTwoRoundingsOfTheExactProduct) {
  std::mt19937 rng(17);
  ThreadPool pool(2);
  const std::vector<int64_t> targets = supported_targets();
  for (int64_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    for (DType dtype : {DType::Q8, DType::Q4})
      for (const auto& [n, k] : {std::pair<int64_t, int64_t>{45, 96}, {13, 77}, {16, 32}})
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

// Weights large enough that each thread's share is cut into many chunks, with more threads than CPUs so that threads
// are descheduled and others take chunks from their shares: every output equals the one-thread product bitwise, and
// a job without tokens writes nothing.
TEST(MatmulBatch, ChunkedAndTakenSharesChangeNoResult) {
  std::mt19937 rng(29);
  for (DType dtype : {DType::Q4, DType::BF16}) {
    std::vector<TestWeight> ws;
    for (int64_t rows : {2048, 1040, 16, 2000})
      ws.push_back(dtype == DType::BF16 ? make_weight(dtype, rows, 512, 0, rng) : make_quant_weight(dtype, rows, 512, rng));
    const std::vector<float> x = random_activations(2 * 512, rng);
    const int64_t ms[] = {1, 2, 0, 1};
    std::vector<std::vector<float>> want(ws.size());
    for (size_t i = 0; i < ws.size(); ++i) {
      want[i].assign(static_cast<size_t>(std::max<int64_t>(ms[i], 1) * ws[i].w.rows), -7.0f);
      matmul_serial(ws[i].w, x.data(), ms[i], want[i].data());
    }
    for (int threads : {1, 2, 5}) {
      ThreadPool pool(threads);
      for (int rep = 0; rep < 3; ++rep) {
        std::vector<std::vector<float>> got(ws.size());
        std::vector<MatmulJob> jobs;
        for (size_t i = 0; i < ws.size(); ++i) {
          got[i].assign(want[i].size(), -7.0f);
          jobs.push_back({ws[i].w, x.data(), ms[i], got[i].data()});
        }
        matmul_batch(jobs, pool);
        for (size_t i = 0; i < ws.size(); ++i)
          ASSERT_EQ(got[i], want[i]) << dtype_name(dtype) << " threads " << threads << " job " << i;
      }
    }
  }
}

TEST(MatmulBatch, EqualsSeparateProducts) {
  std::mt19937 rng(13);
  ThreadPool pool(3);
  for (DType dtype : {DType::BF16, DType::Q8, DType::Q4})
    for (int64_t m : {1, 2, 7}) {
      std::vector<TestWeight> ws;
      for (int64_t rows : {5, 64, 3}) ws.push_back(dtype == DType::BF16 ? make_weight(dtype, rows, 96, 0, rng)
                                                                          : make_quant_weight(dtype, rows, 96, rng));
      const std::vector<float> x = random_activations(m * 96, rng), x2 = random_activations(m * 96, rng);
      std::vector<std::vector<float>> batched(ws.size()), separate(ws.size());
      std::vector<MatmulJob> jobs;
      for (size_t i = 0; i < ws.size(); ++i) {
        batched[i].assign(static_cast<size_t>(m * ws[i].w.rows), NAN);
        separate[i].assign(batched[i].size(), NAN);
        const float* xi = i == 2 ? x2.data() : x.data();  // jobs 0 and 1 share their activations
        jobs.push_back({ws[i].w, xi, m, batched[i].data()});
        matmul(ws[i].w, xi, m, separate[i].data(), pool);
      }
      matmul_batch(jobs, pool);
      for (size_t i = 0; i < ws.size(); ++i)
        for (size_t j = 0; j < batched[i].size(); ++j)
          ASSERT_EQ(batched[i][j], separate[i][j]) << dtype_name(dtype) << " m " << m << " job " << i << " " << j;
    }
}

// A batch with many activation matrices to convert (a batched step's experts, each with its own tokens) converts them
// on the pool's threads: the same bits as each product alone.
TEST(MatmulBatch, ManyConversionsOnThePoolEqualSeparateProducts) {
  std::mt19937 rng(18);
  ThreadPool pool(2);
  for (DType dtype : {DType::Q8, DType::Q4}) {
    const int64_t k = 520, rows = 40;
    std::vector<TestWeight> ws;
    std::vector<std::vector<float>> xs, batched, separate;
    std::vector<MatmulJob> jobs;
    for (int64_t e = 0; e < 7; ++e) {  // 7 experts of 5-17 tokens: about 58k values in all
      const int64_t m = 5 + 2 * e;
      ws.push_back(make_quant_weight(dtype, rows, k, rng));
      xs.push_back(random_activations(m * k, rng));
      batched.emplace_back(static_cast<size_t>(m * rows), NAN);
      separate.emplace_back(static_cast<size_t>(m * rows), NAN);
    }
    for (size_t e = 0; e < ws.size(); ++e) {
      const int64_t m = static_cast<int64_t>(xs[e].size()) / k;
      jobs.push_back({ws[e].w, xs[e].data(), m, batched[e].data()});
      matmul(ws[e].w, xs[e].data(), m, separate[e].data(), pool);
    }
    matmul_batch(jobs, pool);
    for (size_t e = 0; e < ws.size(); ++e)
      for (size_t j = 0; j < batched[e].size(); ++j)
        ASSERT_EQ(batched[e][j], separate[e][j]) << dtype_name(dtype) << " job " << e << " " << j;
  }
}

}  // namespace
}  // namespace whale
