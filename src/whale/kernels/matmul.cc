#include "whale/kernels/matmul.h"

#include <algorithm>
#include <array>
#include <vector>

namespace whale {
namespace {

std::array<float, 256> make_e4m3_table() {
  std::array<float, 256> t{};
  for (int i = 0; i < 256; ++i) t[i] = e4m3_to_f32(static_cast<uint8_t>(i));
  return t;
}

const std::array<float, 256>& e4m3_table() {
  static const std::array<float, 256> table = make_e4m3_table();
  return table;
}

void decode_row(const Weight2D& w, int64_t r, float* out) {
  const int64_t k = w.cols;
  switch (w.dtype) {
    case DType::F32: {
      const uint8_t* p = w.data + r * k * 4;
      for (int64_t c = 0; c < k; ++c) out[c] = load_f32(p, c);
      break;
    }
    case DType::BF16: {
      const uint8_t* p = w.data + r * k * 2;
      for (int64_t c = 0; c < k; ++c) out[c] = bf16_to_f32(load_u16(p, c));
      break;
    }
    case DType::F16: {
      const uint8_t* p = w.data + r * k * 2;
      for (int64_t c = 0; c < k; ++c) out[c] = f16_to_f32(load_u16(p, c));
      break;
    }
    case DType::F8_E4M3: {
      const auto& table = e4m3_table();
      const uint8_t* p = w.data + r * k;
      const int64_t blocks_per_row = (k + w.block_cols - 1) / w.block_cols;
      const float* scales = w.block_scale + (r / w.block_rows) * blocks_per_row;
      for (int64_t b = 0; b < blocks_per_row; ++b) {
        const float s = scales[b];
        const int64_t c1 = std::min<int64_t>(k, (b + 1) * w.block_cols);
        for (int64_t c = b * w.block_cols; c < c1; ++c) out[c] = table[p[c]] * s;
      }
      break;
    }
    default:
      std::fill(out, out + k, 0.0f);  // unreachable: weights are validated at load
  }
}

}  // namespace

void decode_rows(const Weight2D& w, int64_t r0, int64_t r1, float* out) {
  for (int64_t r = r0; r < r1; ++r) decode_row(w, r, out + (r - r0) * w.cols);
}

float dot(const float* a, const float* b, int64_t n) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

void matmul(const Weight2D& w, const float* x, int64_t m, float* y, ThreadPool& pool) {
  const int64_t n = w.rows, k = w.cols;
  constexpr int64_t kTileRows = 8;
  pool.parallel_for(
      (n + kTileRows - 1) / kTileRows,
      [&](int64_t t0, int64_t t1) {
        std::vector<float> tile(kTileRows * k);
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t r0 = t * kTileRows, r1 = std::min(n, r0 + kTileRows);
          decode_rows(w, r0, r1, tile.data());
          for (int64_t i = 0; i < m; ++i)
            for (int64_t r = r0; r < r1; ++r) y[i * n + r] = dot(tile.data() + (r - r0) * k, x + i * k, k);
        }
      },
      std::max<int64_t>(1, 4096 / std::max<int64_t>(k, 1)));
}

void matmul_reference(const Weight2D& w, const float* x, int64_t m, float* y) {
  const int64_t n = w.rows, k = w.cols;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t r = 0; r < n; ++r) {
      double acc = 0.0;
      for (int64_t c = 0; c < k; ++c) {
        double v = load_as_f32(w.dtype, w.data, static_cast<size_t>(r * k + c));
        if (w.dtype == DType::F8_E4M3)
          v *= w.block_scale[(r / w.block_rows) * ((k + w.block_cols - 1) / w.block_cols) + c / w.block_cols];
        acc += v * x[i * k + c];
      }
      y[i * n + r] = static_cast<float>(acc);
    }
}

}  // namespace whale
