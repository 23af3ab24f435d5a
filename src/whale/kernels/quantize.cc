#include "whale/kernels/quantize.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "whale/core/error.h"

namespace whale {

const char* quant_type_name(QuantType t) { return t == QuantType::Q8 ? "q8" : "q4"; }

std::optional<QuantType> quant_type_from_name(std::string_view name) {
  if (name == "q8") return QuantType::Q8;
  if (name == "q4") return QuantType::Q4;
  return std::nullopt;
}

std::vector<int64_t> quant_data_shape(QuantType t, int64_t rows, int64_t cols) {
  return {quant_padded_rows(rows) / kQuantRowGroup, quant_padded_cols(cols) / kQuantBlock, kQuantRowGroup,
          quant_block_bytes(t)};
}

std::vector<int64_t> quant_scale_shape(int64_t rows, int64_t cols) {
  return {quant_padded_rows(rows) / kQuantRowGroup, quant_padded_cols(cols) / kQuantBlock, kQuantRowGroup};
}

int64_t quant_data_bytes(QuantType t, int64_t rows, int64_t cols) {
  return quant_scale_count(rows, cols) * quant_block_bytes(t);
}

int64_t quant_scale_count(int64_t rows, int64_t cols) {
  return quant_padded_rows(rows) * (quant_padded_cols(cols) / kQuantBlock);
}

uint16_t quantize_block(QuantType t, const float* w, uint8_t* out) {
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
  const uint16_t h = f32_to_f16(s32);
  if ((h & 0x7C00) == 0x7C00)
    fail("largest magnitude {} needs a block scale of {}, beyond the f16 range (65504)", absmax, s32);
  const float s = f16_to_f32(h);

  int q[kQuantBlock];
  if (s == 0.0f) {
    std::fill(q, q + kQuantBlock, 0);
  } else {
    const float lo = t == QuantType::Q8 ? -127.0f : -8.0f, hi = t == QuantType::Q8 ? 127.0f : 7.0f;
    for (int j = 0; j < kQuantBlock; ++j) q[j] = static_cast<int>(std::clamp(std::rint(w[j] / s), lo, hi));
  }
  if (t == QuantType::Q8) {
    for (int j = 0; j < kQuantBlock; ++j) out[j] = static_cast<uint8_t>(q[j] + 128);
  } else {
    for (int j = 0; j < kQuantBlock / 2; ++j)
      out[j] = static_cast<uint8_t>((q[j] + 8) | ((q[j + kQuantBlock / 2] + 8) << 4));
  }
  return h;
}

void quantize_row_group(QuantType t, const float* w, int64_t ld, int n_rows, int64_t cols, uint8_t* data,
                        uint16_t* scales, int64_t first_row) {
  const int64_t padded_cols = quant_padded_cols(cols);
  const int64_t blocks = padded_cols / kQuantBlock;
  const int bytes = quant_block_bytes(t);
  float block[kQuantBlock];
  for (int i = 0; i < kQuantRowGroup; ++i) {
    for (int64_t kb = 0; kb < blocks; ++kb) {
      const int64_t c0 = kb * kQuantBlock;
      const int64_t n = i < n_rows ? std::min<int64_t>(kQuantBlock, cols - c0) : 0;
      const float* src = w + i * ld + c0;
      std::copy(src, src + n, block);
      std::fill(block + n, block + kQuantBlock, 0.0f);
      const int64_t slot = kb * kQuantRowGroup + i;  // quant_scale_index relative to the group
      try {
        scales[slot] = quantize_block(t, block, data + slot * bytes);
      } catch (const Error& e) {
        fail("row {}, columns {}..{}: {}", first_row + i, c0, c0 + kQuantBlock - 1, e.what());
      }
    }
  }
}

void quantize_matrix(QuantType t, const float* w, int64_t rows, int64_t cols, uint8_t* data, uint16_t* scales) {
  const int64_t groups = quant_padded_rows(rows) / kQuantRowGroup;
  const int64_t group_scales = quant_padded_cols(cols) / kQuantBlock * kQuantRowGroup;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t r0 = g * kQuantRowGroup;
    const int n_rows = static_cast<int>(std::min<int64_t>(kQuantRowGroup, rows - r0));
    quantize_row_group(t, w + r0 * cols, cols, n_rows, cols, data + g * group_scales * quant_block_bytes(t),
                       scales + g * group_scales, r0);
  }
}

void dequantize_row(const Weight2D& w, int64_t r, float* out) {
  const QuantType t = w.dtype == DType::Q8 ? QuantType::Q8 : QuantType::Q4;
  const int64_t padded_cols = quant_padded_cols(w.cols);
  const int64_t blocks = padded_cols / kQuantBlock;
  for (int64_t kb = 0; kb < blocks; ++kb) {
    const uint8_t* b = w.data + quant_block_offset(t, padded_cols, r, kb);
    const float s = f16_to_f32(w.qscale[quant_scale_index(padded_cols, r, kb)]);
    const int64_t c0 = kb * kQuantBlock;
    const int n = static_cast<int>(std::min<int64_t>(kQuantBlock, w.cols - c0));
    float* o = out + c0;
    if (t == QuantType::Q8) {
      for (int j = 0; j < n; ++j) o[j] = s * static_cast<float>(static_cast<int>(b[j]) - 128);
    } else {
      for (int j = 0; j < n; ++j) {
        const int nibble = j < kQuantBlock / 2 ? b[j] & 0xF : b[j - kQuantBlock / 2] >> 4;
        o[j] = s * static_cast<float>(nibble - 8);
      }
    }
  }
}

}  // namespace whale
