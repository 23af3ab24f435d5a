#include "whale/kernels/quantize.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <iterator>
#include <limits>

#include "whale/core/error.h"

namespace whale {

const char* quant_type_name(QuantType t) { return t == QuantType::Q8 ? "q8" : "q4"; }

std::optional<QuantType> quant_type_from_name(std::string_view name) {
  if (name == "q8") return QuantType::Q8;
  if (name == "q4") return QuantType::Q4;
  return std::nullopt;
}

std::vector<int64_t> quant_data_shape(QuantType t, int64_t rows, int64_t cols) {
  return {quant_padded_rows(rows) / kQuantRowGroup, quant_padded_cols(cols) / (kQuantSuperBlocks * kQuantBlock),
          quant_superblock_bytes(t)};
}

int64_t quant_data_bytes(QuantType t, int64_t rows, int64_t cols) {
  return quant_padded_rows(rows) / kQuantRowGroup * quant_group_bytes(t, quant_padded_cols(cols));
}

void set_quant_scales(QuantType t, int64_t rows, int64_t cols, uint8_t* data, uint16_t bits) {
  const int64_t padded_cols = quant_padded_cols(cols);
  for (int64_t r = 0; r < quant_padded_rows(rows); ++r)
    for (int64_t kb = 0; kb < padded_cols / kQuantBlock; ++kb) {
      uint8_t* at = data + quant_scale_offset(t, padded_cols, r, kb);
      at[0] = static_cast<uint8_t>(bits & 0xFF);
      at[1] = static_cast<uint8_t>(bits >> 8);
    }
}

uint16_t quant_scale_bits(const Weight2D& w, int64_t r, int64_t kb) {
  const QuantType t = w.dtype == DType::Q8 ? QuantType::Q8 : QuantType::Q4;
  return load_u16(w.data + quant_scale_offset(t, quant_padded_cols(w.cols), r, kb), 0);
}

uint16_t quantize_block(QuantType t, const float* w, int8_t* q) {
  float absmax = 0.0f, wmax = 0.0f;
  bool finite = true;
  for (int j = 0; j < kQuantBlock; ++j) {
    const float a = std::fabs(w[j]);
    finite &= a <= FLT_MAX;  // false for inf and NaN
    absmax = a > absmax ? a : absmax;
    wmax = w[j] > wmax ? w[j] : wmax;
  }
  if (!finite) {
    for (int j = 0; j < kQuantBlock; ++j)
      if (!std::isfinite(w[j])) fail("column {} of the block holds {}, which cannot be quantized", j, w[j]);
  }
  float s32;
  if (t == QuantType::Q8) s32 = absmax / 127.0f;
  else s32 = wmax == absmax ? absmax / 7.0f : absmax / 8.0f;
  uint16_t h = f32_to_f16(s32);
  if ((h & 0x7C00) == 0x7C00)
    fail("largest magnitude {} needs a block scale of {}, beyond the f16 range (65504)", absmax, s32);
  const float lo = t == QuantType::Q8 ? -127.0f : -8.0f, hi = t == QuantType::Q8 ? 127.0f : 7.0f;
  const float s0 = f16_to_f32(h);
  if (t == QuantType::Q8) {
    if (s0 == 0.0f) std::fill(q, q + kQuantBlock, int8_t{0});
    else
      for (int j = 0; j < kQuantBlock; ++j) q[j] = static_cast<int8_t>(std::clamp(std::rint(w[j] / s0), lo, hi));
    return h;
  }

  // q4: sixteen levels leave a visible rounding error, so try smaller and larger scales and keep the one with the
  // least squared error (the first of equals). Sums run in double from column 0 up, as the numpy reference does; a
  // candidate is dropped as soon as its partial sum reaches the best (the terms are never negative, so it could not
  // end strictly below). A zero scale is never strictly better than the default: each code's error is at most |w|.
  auto squared_error = [&](float s, int8_t* codes, double limit) {
    double e = 0.0;
    for (int j = 0; j < kQuantBlock; ++j) {
      const float c = std::clamp(std::rint(w[j] / s), lo, hi);
      codes[j] = static_cast<int8_t>(c);
      const double d = static_cast<double>(w[j]) - static_cast<double>(s) * c;
      e += d * d;
      if (e >= limit) break;
    }
    return e;
  };
  double best = 0.0;  // the default scale's error; its codes go to q
  if (s0 != 0.0f) {
    best = squared_error(s0, q, std::numeric_limits<double>::infinity());
  } else {
    std::fill(q, q + kQuantBlock, int8_t{0});
    for (int j = 0; j < kQuantBlock; ++j) best += static_cast<double>(w[j]) * w[j];
  }
  int8_t trial[kQuantBlock];
  for (size_t k = 1; k < std::size(kQ4ScaleFactors); ++k) {
    const uint16_t hk = f32_to_f16(s32 * kQ4ScaleFactors[k]);
    if ((hk & 0x7C00) == 0x7C00) continue;  // beyond the f16 range
    const float sk = f16_to_f32(hk);
    if (sk == 0.0f) continue;
    const double e = squared_error(sk, trial, best);
    if (e < best) {
      best = e;
      h = hk;
      std::copy(trial, trial + kQuantBlock, q);
    }
  }
  return h;
}

int64_t quantize_blocks_q4_scalar(const float* w, int64_t n, int8_t* q, uint16_t* scales) {
  for (int64_t b = 0; b < n; ++b) {
    try {
      scales[b] = quantize_block(QuantType::Q4, w + b * kQuantBlock, q + b * kQuantBlock);
    } catch (const Error&) {
      return b;
    }
  }
  return n;
}

void quantize_row_group(QuantType t, const float* w, int64_t ld, int n_rows, int64_t cols, uint8_t* data,
                        int64_t first_row) {
  const int64_t padded_cols = quant_padded_cols(cols);
  const int64_t blocks = padded_cols / kQuantBlock;
  const int bias = t == QuantType::Q8 ? 128 : 8;
  std::fill(data, data + quant_group_bytes(t, padded_cols), uint8_t{0});
  std::vector<float> row(static_cast<size_t>(padded_cols));
  std::vector<int8_t> q(static_cast<size_t>(padded_cols));
  std::vector<uint16_t> s(static_cast<size_t>(blocks));
  for (int i = 0; i < kQuantRowGroup; ++i) {
    const int64_t n = i < n_rows ? cols : 0;
    if (n > 0) std::copy(w + i * ld, w + i * ld + n, row.begin());
    std::fill(row.begin() + n, row.end(), 0.0f);
    // q4 searches its scales many blocks at a time; from a block that search rejects on, quantize_block takes over
    // and throws the error.
    int64_t kb = t == QuantType::Q4 ? quantize_blocks_q4(row.data(), blocks, q.data(), s.data()) : 0;
    for (; kb < blocks; ++kb) {
      const int64_t c0 = kb * kQuantBlock;
      try {
        s[kb] = quantize_block(t, row.data() + c0, q.data() + c0);
      } catch (const Error& e) {
        fail("row {}, columns {}..{}: {}", first_row + i, c0, c0 + kQuantBlock - 1, e.what());
      }
    }
    for (kb = 0; kb < blocks; ++kb) {  // little-endian f16, as safetensors stores F16
      uint8_t* at = data + quant_scale_offset(t, padded_cols, i, kb);
      at[0] = static_cast<uint8_t>(s[kb] & 0xFF);
      at[1] = static_cast<uint8_t>(s[kb] >> 8);
    }
    for (int64_t c = 0; c < padded_cols; ++c) {
      const QuantCodePosition p = quant_code_position(t, padded_cols, i, c);
      data[p.byte] |= static_cast<uint8_t>((q[c] + bias) << (p.high_nibble ? 4 : 0));
    }
  }
}

void quantize_matrix(QuantType t, const float* w, int64_t rows, int64_t cols, uint8_t* data) {
  const int64_t groups = quant_padded_rows(rows) / kQuantRowGroup;
  const int64_t group_bytes = quant_group_bytes(t, quant_padded_cols(cols));
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t r0 = g * kQuantRowGroup;
    const int n_rows = static_cast<int>(std::min<int64_t>(kQuantRowGroup, rows - r0));
    quantize_row_group(t, w + r0 * cols, cols, n_rows, cols, data + g * group_bytes, r0);
  }
}

void dequantize_row(const Weight2D& w, int64_t r, float* out) {
  const QuantType t = w.dtype == DType::Q8 ? QuantType::Q8 : QuantType::Q4;
  const int64_t padded_cols = quant_padded_cols(w.cols);
  const int bias = t == QuantType::Q8 ? 128 : 8;
  for (int64_t c = 0; c < w.cols; ++c) {
    const QuantCodePosition p = quant_code_position(t, padded_cols, r, c);
    const int code = t == QuantType::Q8 ? w.data[p.byte] : (w.data[p.byte] >> (p.high_nibble ? 4 : 0)) & 0xF;
    out[c] = f16_to_f32(quant_scale_bits(w, r, c / kQuantBlock)) * static_cast<float>(code - bias);
  }
}

}  // namespace whale
