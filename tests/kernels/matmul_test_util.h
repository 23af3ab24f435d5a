// Shared by the matmul tests (matmul_test.cc: float formats; matmul_quant_test.cc: q8/q4): random weights in each
// stored format with their exact values, decoded from the format definitions independently of the library, and the
// error bounds the products are checked against. quantize_test.cc reads codes back with stored_code.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "whale/core/dtype.h"
#include "whale/core/thread_pool.h"
#include "whale/kernels/matmul.h"
#include "whale/kernels/quant_format.h"

namespace whale::matmul_test {

// Code of W[r, c] read back from a q8/q4 matrix's bytes where quant_code_position places it: q8 byte − 128, q4
// nibble − 8.
inline int stored_code(QuantType t, const uint8_t* data, int64_t padded_cols, int64_t r, int64_t c) {
  const QuantCodePosition p = quant_code_position(t, padded_cols, r, c);
  if (t == QuantType::Q8) return data[p.byte] - 128;
  return ((data[p.byte] >> (p.high_nibble ? 4 : 0)) & 0xF) - 8;
}

constexpr double kF32Eps = 0x1p-24;  // unit roundoff u of f32 (round to nearest)
constexpr double kF64Eps = 0x1p-53;  // unit roundoff of double

// Decoders written from the format definitions (value = integer · 2^power), independent of core/dtype.cc.
inline double decode_bf16(uint16_t h) {  // 1 sign, 8 exponent (bias 127), 7 mantissa bits
  const int sign = h >> 15, exp = (h >> 7) & 0xFF, mant = h & 0x7F;
  const double integer = exp == 0 ? mant : 128 + mant;
  return (sign ? -1.0 : 1.0) * std::ldexp(integer, (exp == 0 ? 1 : exp) - 127 - 7);
}
inline double decode_f16(uint16_t h) {  // 1 sign, 5 exponent (bias 15), 10 mantissa bits
  const int sign = h >> 15, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  const double integer = exp == 0 ? mant : 1024 + mant;
  return (sign ? -1.0 : 1.0) * std::ldexp(integer, (exp == 0 ? 1 : exp) - 15 - 10);
}
inline double decode_e4m3(uint8_t v) {  // 1 sign, 4 exponent (bias 7), 3 mantissa bits (deepseek-spec §3.3)
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

inline TestWeight make_weight(DType dtype, int64_t rows, int64_t cols, size_t misalign, std::mt19937& rng,
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

inline std::vector<float> random_activations(int64_t n, std::mt19937& rng) {
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
inline double gamma(double n, double u) { return n * u / (1.0 - n * u); }

struct Expected {
  std::vector<double> y;    // exact (to double precision) products
  std::vector<double> abs;  // S for each output
};

inline Expected exact_product(const TestWeight& t, const std::vector<float>& x, int64_t m) {
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

inline std::string label(DType dtype, int64_t m, int64_t n, int64_t k, size_t misalign, int br = 0, int bc = 0) {
  std::string s = std::string(dtype_name(dtype)) + " M " + std::to_string(m) + " N " +
                  std::to_string(n) + " K " + std::to_string(k) + " misalign " + std::to_string(misalign);
  if (br) s += " block " + std::to_string(br) + "x" + std::to_string(bc);
  return s;
}

// Checks matmul and matmul_reference against the exact product and each other, and matmul's row independence.
inline void check_matmul(const TestWeight& t, int64_t m, std::mt19937& rng, ThreadPool& pool) {
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

// ---- whale q8 / q4 (kernels/quant_format.h) ----

// Random codes and f16 scales laid out as the format specifies, padding (rows to 16, cols to 64) holding the zero
// code; values[r][c] decoded here from the spec, independently of the library: row group r/16 is a run of
// superblocks, each two group blocks of 16·B bytes (blocks 2j and 2j + 1) and then their 32 f16 scales (block 2j's
// rows 0..15, then block 2j + 1's); in a group block, line j/4 (of column j within the block; q4: j%16) holds 4 bytes
// per row, row r%16's at (line·16 + r%16)·4, column j%4 within them; q4 columns j ≥ 16 are high nibbles.
inline TestWeight make_quant_weight(DType dtype, int64_t rows, int64_t cols, std::mt19937& rng) {
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
inline void check_quant_matmul(const TestWeight& t, int64_t m, std::mt19937& rng, ThreadPool& pool) {
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

}  // namespace whale::matmul_test
