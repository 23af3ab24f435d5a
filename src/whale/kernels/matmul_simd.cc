// SIMD kernels behind matmul: weight decoding, float dot-product tiles, and int8 tiles for q8/q4 weights.
// Compiled once per instruction set by Highway's foreach_target; HWY_DYNAMIC_DISPATCH picks the best at run time.
// On AVX-512 with VNNI (Highway's AVX3_DL target) the q8/q4 tiles use vpdpbusd directly; elsewhere they fall back to
// exact integer arithmetic in portable code.

// AVX3_DL (VNNI, VBMI2, ...) is opt-in in Highway 1.0.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif

#include "whale/kernels/matmul_simd.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "whale/core/dtype.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "whale/kernels/matmul_simd.cc"
#include <hwy/foreach_target.h>  // NOLINT: re-includes this file once per target
#include <hwy/highway.h>
#include <hwy/aligned_allocator.h>

#if HWY_TARGET == HWY_AVX3_DL
#include <immintrin.h>
#endif

HWY_BEFORE_NAMESPACE();
namespace whale::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// ---------------------------------------------------------------------------------------------------------------
// Element decoders. Every SIMD decode produces exactly the scalar value (all conversions are exact), so a panel
// decoded to f32 and the inline decode feed identical numbers to the same FMAs.

// e4m3 bits → f16 bits: sign-extend to 16 bits, shift the 7 exponent/mantissa bits into f16's position and clear the
// copy of the sign that lands in bit 14. f16's exponent bias (15) exceeds e4m3's (7) by 8: the value is 2^-8 times
// the e4m3 value, subnormals included, which the caller's scale multiplies back.
HWY_INLINE VF VecE4m3(DF df, const uint8_t* p, VF scale256) {
  const hn::Rebind<int8_t, DF> d8;
  const hn::Rebind<int16_t, DF> d16;
  const hn::Rebind<hwy::float16_t, DF> dh;
  const auto wide = hn::PromoteTo(d16, hn::LoadU(d8, reinterpret_cast<const int8_t*>(p)));
  const auto bits = hn::And(hn::ShiftLeft<7>(wide), hn::Set(d16, static_cast<int16_t>(0xBFFF)));
  return hn::Mul(hn::PromoteTo(df, hn::BitCast(dh, bits)), scale256);
}

HWY_INLINE VF VecBf16(DF df, const uint8_t* p) {
  const hn::Rebind<uint16_t, DF> d16;
  const hn::Rebind<uint32_t, DF> d32;
  const auto v = hn::PromoteTo(d32, hn::LoadU(d16, reinterpret_cast<const uint16_t*>(p)));
  return hn::BitCast(df, hn::ShiftLeft<16>(v));
}

HWY_INLINE VF VecF16(DF df, const uint8_t* p) {
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
}

// Scalar value of element c of a float-format row (block scale already folded into `scale` for FP8).
inline float ScalarElement(DType t, const uint8_t* row, int64_t c, float scale) {
  switch (t) {
    case DType::F32: return load_f32(row, static_cast<size_t>(c));
    case DType::BF16: return bf16_to_f32(load_u16(row, static_cast<size_t>(c)));
    case DType::F16: return f16_to_f32(load_u16(row, static_cast<size_t>(c)));
    case DType::F8_E4M3: return e4m3_to_f32(row[c]) * scale;
    default: return 0.0f;
  }
}

inline float QuantScale(const Weight2D& w, int64_t r, int64_t kb) {
  return f16_to_f32(w.qscale[quant_scale_index(quant_padded_cols(w.cols), r, kb)]);
}

// The f16 scales of row group g ([blocks][4]) as f32.
void DecodeGroupScales(const Weight2D& w, int64_t g, std::vector<float>& out) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const hn::Rebind<hwy::float16_t, DF> dh;
  const size_t n = static_cast<size_t>(quant_padded_cols(w.cols) / kQuantBlock * kQuantRowGroup);
  out.resize(n);
  const auto* src = reinterpret_cast<const hwy::float16_t*>(w.qscale + g * static_cast<int64_t>(n));
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, src + i)), df, out.data() + i);
  for (; i < n; ++i) out[i] = f16_to_f32(w.qscale[g * static_cast<int64_t>(n) + i]);
}

// Row r of a q8/q4 weight, all padded_cols values, as f32; `scales` are its group's (DecodeGroupScales).
void DecodeQuantRow(const Weight2D& w, int64_t r, const float* scales, float* out) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const hn::Rebind<uint8_t, DF> d8;
  const hn::Rebind<int32_t, DF> di;
  const QuantType type = w.dtype == DType::Q8 ? QuantType::Q8 : QuantType::Q4;
  const int64_t pc = quant_padded_cols(w.cols), blocks = pc / kQuantBlock;
  for (int64_t kb = 0; kb < blocks; ++kb) {
    const uint8_t* p = w.data + quant_block_offset(type, pc, r, kb);
    const VF s = hn::Set(df, scales[kb * kQuantRowGroup + r % kQuantRowGroup]);
    float* o = out + kb * kQuantBlock;
    if (type == QuantType::Q8) {
      const VF bias = hn::Set(df, 128.0f);
      for (size_t j = 0; j < static_cast<size_t>(kQuantBlock); j += N) {
        const auto codes = hn::BitCast(di, hn::PromoteTo(hn::Rebind<uint32_t, DF>(), hn::LoadU(d8, p + j)));
        hn::StoreU(hn::Mul(hn::Sub(hn::ConvertTo(df, codes), bias), s), df, o + j);
      }
    } else {
      const VF bias = hn::Set(df, 8.0f);
      const auto mask = hn::Set(d8, uint8_t{0x0F});
      for (size_t j = 0; j < 16; j += N) {
        const auto v = hn::LoadU(d8, p + j);
        const auto lo = hn::BitCast(di, hn::PromoteTo(hn::Rebind<uint32_t, DF>(), hn::And(v, mask)));
        const auto hi = hn::BitCast(di, hn::PromoteTo(hn::Rebind<uint32_t, DF>(), hn::ShiftRight<4>(v)));
        hn::StoreU(hn::Mul(hn::Sub(hn::ConvertTo(df, lo), bias), s), df, o + j);
        hn::StoreU(hn::Mul(hn::Sub(hn::ConvertTo(df, hi), bias), s), df, o + 16 + j);
      }
    }
  }
}

void DecodeRows(const Weight2D& w, int64_t r0, int64_t r1, float* out) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t k = w.cols;
  if (w.dtype == DType::Q8 || w.dtype == DType::Q4) {
    std::vector<float> row(static_cast<size_t>(quant_padded_cols(k))), scales;
    int64_t group = -1;
    for (int64_t r = r0; r < r1; ++r) {
      if (r / kQuantRowGroup != group) DecodeGroupScales(w, group = r / kQuantRowGroup, scales);
      if (quant_padded_cols(k) == k) {
        DecodeQuantRow(w, r, scales.data(), out + (r - r0) * k);
        continue;
      }
      DecodeQuantRow(w, r, scales.data(), row.data());
      std::memcpy(out + (r - r0) * k, row.data(), sizeof(float) * static_cast<size_t>(k));
    }
    return;
  }
  const size_t elem = dtype_size(w.dtype);
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w.data + static_cast<size_t>(r * k) * elem;
    float* o = out + (r - r0) * k;
    switch (w.dtype) {
      case DType::F32:
        std::memcpy(o, row, sizeof(float) * static_cast<size_t>(k));
        break;
      case DType::BF16:
      case DType::F16: {
        int64_t c = 0;
        for (; c + N <= k; c += N)
          hn::StoreU(w.dtype == DType::BF16 ? VecBf16(df, row + 2 * c) : VecF16(df, row + 2 * c), df, o + c);
        for (; c < k; ++c) o[c] = ScalarElement(w.dtype, row, c, 1.0f);
        break;
      }
      case DType::F8_E4M3: {
        const int64_t bc = w.block_cols, bpr = (k + bc - 1) / bc;
        for (int64_t b = 0; b < bpr; ++b) {
          const float s = w.block_scale[(r / w.block_rows) * bpr + b];
          const VF s256 = hn::Set(df, s * 256.0f);
          int64_t c = b * bc;
          const int64_t c1 = std::min(k, c + bc);
          for (; c + N <= c1; c += N) hn::StoreU(VecE4m3(df, row + c, s256), df, o + c);
          for (; c < c1; ++c) o[c] = e4m3_to_f32(row[c]) * s;
        }
        break;
      }
      default:
        std::fill(o, o + k, 0.0f);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Float tiles: 4 rows × T tokens of dot products, one vector accumulator per pair, reduced at the end.

template <int T, class LoadW>
HWY_INLINE void TileFloatT(const LoadW& load, const Weight2D& w, const uint8_t* const rows[4], int n_rows,
                           const float* x, int64_t ldx, float* y, int64_t ldy) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t k = w.cols;
  VF acc[4][T];
  for (int r = 0; r < 4; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = hn::Zero(df);
  int64_t c = 0;
  for (; c + N <= k; c += N) {
    VF xv[T];
    for (int t = 0; t < T; ++t) xv[t] = hn::LoadU(df, x + t * ldx + c);
    for (int r = 0; r < 4; ++r) {
      const VF wv = load(r, c);
      for (int t = 0; t < T; ++t) acc[r][t] = hn::MulAdd(wv, xv[t], acc[r][t]);
    }
  }
  for (int r = 0; r < n_rows; ++r)
    for (int t = 0; t < T; ++t) {
      float s = hn::GetLane(hn::SumOfLanes(df, acc[r][t]));
      for (int64_t cc = c; cc < k; ++cc) s += load.scalar(r, cc) * x[t * ldx + cc];
      y[t * ldy + r] = s;
    }
}

struct LoadF32Rows {
  const uint8_t* const* rows;
  VF operator()(int r, int64_t c) const { return hn::LoadU(DF(), reinterpret_cast<const float*>(rows[r]) + c); }
  float scalar(int r, int64_t c) const { return load_f32(rows[r], static_cast<size_t>(c)); }
};
struct LoadBF16Rows {
  const uint8_t* const* rows;
  VF operator()(int r, int64_t c) const { return VecBf16(DF(), rows[r] + 2 * c); }
  float scalar(int r, int64_t c) const { return bf16_to_f32(load_u16(rows[r], static_cast<size_t>(c))); }
};
struct LoadF16Rows {
  const uint8_t* const* rows;
  VF operator()(int r, int64_t c) const { return VecF16(DF(), rows[r] + 2 * c); }
  float scalar(int r, int64_t c) const { return f16_to_f32(load_u16(rows[r], static_cast<size_t>(c))); }
};
struct LoadFP8Rows {
  const uint8_t* const* rows;
  const float* scales[4];  // row r's block scales
  int block_cols;
  VF operator()(int r, int64_t c) const {
    return VecE4m3(DF(), rows[r] + c, hn::Set(DF(), scales[r][c / block_cols] * 256.0f));
  }
  float scalar(int r, int64_t c) const { return e4m3_to_f32(rows[r][c]) * scales[r][c / block_cols]; }
};

template <class LoadW>
void TileFloatDispatch(const LoadW& load, const Weight2D& w, const uint8_t* const rows[4], int n_rows,
                       const float* x, int64_t ldx, int n_tokens, float* y, int64_t ldy) {
  switch (n_tokens) {
    case 1: TileFloatT<1>(load, w, rows, n_rows, x, ldx, y, ldy); break;
    case 2: TileFloatT<2>(load, w, rows, n_rows, x, ldx, y, ldy); break;
    case 3: TileFloatT<3>(load, w, rows, n_rows, x, ldx, y, ldy); break;
    default: TileFloatT<4>(load, w, rows, n_rows, x, ldx, y, ldy); break;
  }
}

void TileFloat(const Weight2D& w, int64_t r0, int n_rows, const float* x, int64_t ldx, int n_tokens, float* y,
               int64_t ldy) {
  const size_t elem = dtype_size(w.dtype);
  const uint8_t* rows[4];
  for (int r = 0; r < 4; ++r) rows[r] = w.data + static_cast<size_t>((r0 + std::min(r, n_rows - 1)) * w.cols) * elem;
  switch (w.dtype) {
    case DType::F32: TileFloatDispatch(LoadF32Rows{rows}, w, rows, n_rows, x, ldx, n_tokens, y, ldy); break;
    case DType::BF16: TileFloatDispatch(LoadBF16Rows{rows}, w, rows, n_rows, x, ldx, n_tokens, y, ldy); break;
    case DType::F16: TileFloatDispatch(LoadF16Rows{rows}, w, rows, n_rows, x, ldx, n_tokens, y, ldy); break;
    case DType::F8_E4M3: {
      LoadFP8Rows load{rows, {}, w.block_cols};
      const int64_t bpr = (w.cols + w.block_cols - 1) / w.block_cols;
      for (int r = 0; r < 4; ++r) load.scales[r] = w.block_scale + ((r0 + std::min(r, n_rows - 1)) / w.block_rows) * bpr;
      TileFloatDispatch(load, w, rows, n_rows, x, ldx, n_tokens, y, ldy);
      break;
    }
    default: break;
  }
}

// Prefill over an f32 panel of decoded rows: tiles of 4 rows × up to 6 tokens (24 accumulators), K walked in chunks
// that keep the tokens' slices in L1 while the panel (in L2) streams past them. The accumulators go to memory between
// chunks unchanged, so every (row, token) sees exactly the FMA sequence of TileFloatT: results are bitwise equal to
// the streaming path's.
constexpr int kPanelTokens = 6;
constexpr int64_t kChunk = 512;  // floats of K per chunk: 6 tokens × 2 KB + 4 rows × 2 KB in L1

template <int T>
HWY_INLINE void PanelChunk(const float* const w[4], const float* const x[T], int64_t c0, int64_t c1, float* acc) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  VF a[4][T];
  for (int r = 0; r < 4; ++r)
    for (int t = 0; t < T; ++t) a[r][t] = hn::Load(df, acc + (r * T + t) * N);
  for (int64_t c = c0; c < c1; c += N) {
    VF xv[T];
    for (int t = 0; t < T; ++t) xv[t] = hn::LoadU(df, x[t] + c);
    for (int r = 0; r < 4; ++r) {
      const VF wv = hn::LoadU(df, w[r] + c);
      for (int t = 0; t < T; ++t) a[r][t] = hn::MulAdd(wv, xv[t], a[r][t]);
    }
  }
  for (int r = 0; r < 4; ++r)
    for (int t = 0; t < T; ++t) hn::Store(a[r][t], df, acc + (r * T + t) * N);
}

template <int T>
void PanelTokens(const float* panel, int64_t rows, int64_t k, const float* x, int64_t ldx, float* y, int64_t ldy,
                 float* acc) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t kv = k - k % N, groups = (rows + 3) / 4;
  std::fill(acc, acc + groups * 4 * T * N, 0.0f);
  const float* xr[T];
  for (int t = 0; t < T; ++t) xr[t] = x + t * ldx;
  for (int64_t c0 = 0; c0 < kv; c0 += kChunk) {
    const int64_t c1 = std::min(kv, c0 + kChunk);
    for (int64_t g = 0; g < groups; ++g) {
      const float* wr[4];
      for (int r = 0; r < 4; ++r) wr[r] = panel + std::min(g * 4 + r, rows - 1) * k;
      PanelChunk<T>(wr, xr, c0, c1, acc + g * 4 * T * N);
    }
  }
  for (int64_t g = 0; g < groups; ++g)
    for (int r = 0; r < 4 && g * 4 + r < rows; ++r) {
      const float* wrow = panel + (g * 4 + r) * k;
      for (int t = 0; t < T; ++t) {
        float s = hn::GetLane(hn::SumOfLanes(df, hn::Load(df, acc + (g * 4 * T + r * T + t) * N)));
        for (int64_t c = kv; c < k; ++c) s += wrow[c] * xr[t][c];
        y[t * ldy + g * 4 + r] = s;
      }
    }
}

void PanelF32(const float* panel, int64_t rows, int64_t k, const float* x, int64_t ldx, int64_t m, float* y,
              int64_t ldy) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const size_t groups = static_cast<size_t>((rows + 3) / 4);
  auto acc = hwy::AllocateAligned<float>(groups * 4 * kPanelTokens * N);
  for (int64_t t0 = 0; t0 < m; t0 += kPanelTokens) {
    const float* xt = x + t0 * ldx;
    float* yt = y + t0 * ldy;
    switch (std::min<int64_t>(kPanelTokens, m - t0)) {
      case 1: PanelTokens<1>(panel, rows, k, xt, ldx, yt, ldy, acc.get()); break;
      case 2: PanelTokens<2>(panel, rows, k, xt, ldx, yt, ldy, acc.get()); break;
      case 3: PanelTokens<3>(panel, rows, k, xt, ldx, yt, ldy, acc.get()); break;
      case 4: PanelTokens<4>(panel, rows, k, xt, ldx, yt, ldy, acc.get()); break;
      case 5: PanelTokens<5>(panel, rows, k, xt, ldx, yt, ldy, acc.get()); break;
      default: PanelTokens<6>(panel, rows, k, xt, ldx, yt, ldy, acc.get()); break;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Activation quantization and q8/q4 tiles.

void QuantizeActivations(const float* x, int64_t m, int64_t k, int64_t ldx, QuantType type, int64_t padded_cols,
                         QuantizedActivations& out) {
  const int64_t blocks = padded_cols / kQuantBlock;
  out.type = type;
  out.m = m;
  out.blocks = blocks;
  out.q.assign(static_cast<size_t>(m * padded_cols), 0);
  out.scale.assign(static_cast<size_t>(m * blocks), 0.0f);
  out.corr.assign(static_cast<size_t>(m * blocks), 0);
  out.corr_lanes.assign(static_cast<size_t>(m * blocks * 16), 0);
  const int32_t bias = type == QuantType::Q8 ? 128 : 8;
  for (int64_t t = 0; t < m; ++t)
    for (int64_t kb = 0; kb < blocks; ++kb) {
      const int64_t c0 = kb * kQuantBlock, c1 = std::min(k, c0 + kQuantBlock);
      float amax = 0.0f;
      for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(x[t * ldx + c]));
      if (amax == 0.0f) continue;
      const float scale = amax / 127.0f, inv = 127.0f / amax;
      int8_t* q = out.q.data() + t * padded_cols;
      int32_t sum = 0;
      for (int64_t c = c0; c < c1; ++c) {
        const int v = static_cast<int>(std::nearbyint(x[t * ldx + c] * inv));
        q[c] = static_cast<int8_t>(std::clamp(v, -127, 127));
        sum += q[c];
      }
      out.scale[t * blocks + kb] = scale;
      out.corr[t * blocks + kb] = -bias * sum;
      int32_t* lanes = out.corr_lanes.data() + (t * blocks + kb) * 16;
      for (int l = 0; l < 16; l += type == QuantType::Q8 ? 8 : 4) lanes[l] = -bias * sum;
    }
}

// Portable: exact integer dot per block, then Σ_b (dot_b + corr_b) · (s_w · s_x) in f32, block by block.
void TileQuantPortable(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq, int64_t t0,
                       int n_tokens, float* y, int64_t ldy) {
  const QuantType type = xq.type;
  const int64_t pc = xq.blocks * kQuantBlock;
  for (int i = 0; i < n_rows; ++i) {
    const int64_t r = g * kQuantRowGroup + i;
    for (int t = 0; t < n_tokens; ++t) {
      const int8_t* xrow = xq.q.data() + (t0 + t) * pc;
      float acc = 0.0f;
      for (int64_t kb = 0; kb < xq.blocks; ++kb) {
        const uint8_t* p = w.data + quant_block_offset(type, pc, r, kb);
        const int8_t* xb = xrow + kb * kQuantBlock;
        int32_t dot = xq.corr[(t0 + t) * xq.blocks + kb];
        if (type == QuantType::Q8) {
          for (int j = 0; j < kQuantBlock; ++j) dot += static_cast<int32_t>(p[j]) * xb[j];
        } else {
          for (int j = 0; j < 16; ++j)
            dot += static_cast<int32_t>(p[j] & 0x0F) * xb[j] + static_cast<int32_t>(p[j] >> 4) * xb[16 + j];
        }
        acc += static_cast<float>(dot) * (QuantScale(w, r, kb) * xq.scale[(t0 + t) * xq.blocks + kb]);
      }
      y[t * ldy + i] = acc;
    }
  }
}

#if HWY_TARGET == HWY_AVX3_DL
#define WHALE_VNNI_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c")))

WHALE_VNNI_ATTR inline float Sum4(__m128 v) {
  v = _mm_add_ps(v, _mm_movehl_ps(v, v));
  v = _mm_add_ss(v, _mm_movehdup_ps(v));
  return _mm_cvtss_f32(v);
}
WHALE_VNNI_ATTR inline float Sum8(__m256 v) {
  return Sum4(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)));
}

// Four rows' scales of block kb as f32 in lanes 0..3.
WHALE_VNNI_ATTR inline __m512 GroupScales(const uint16_t* s) {
  int64_t bits;
  std::memcpy(&bits, s, 8);
  return _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi64_si128(bits)));
}

// q8: a 64-byte vector holds two rows' blocks (lanes 0-7: first row, 8-15: second). vpdpbusd multiplies the
// biased unsigned weight codes by the signed activations; the accumulator starts at −128 Σ q_x in one lane per row.
template <int T>
WHALE_VNNI_ATTR void TileQ8Vnni(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq,
                                int64_t t0, float* y, int64_t ldy) {
  const int64_t blocks = xq.blocks, pc = blocks * kQuantBlock;
  const __m512i idx01 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512i idx23 = _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2);
  __m512 f01[T], f23[T];
  for (int t = 0; t < T; ++t) f01[t] = f23[t] = _mm512_setzero_ps();
  const uint8_t* wp = w.data + g * blocks * kQuantRowGroup * 32;
  const uint16_t* sp = w.qscale + g * blocks * kQuantRowGroup;
  for (int64_t kb = 0; kb < blocks; ++kb, wp += 128, sp += 4) {
    const __m512i w01 = _mm512_loadu_si512(wp), w23 = _mm512_loadu_si512(wp + 64);
    const __m512 s4 = GroupScales(sp);
    const __m512 sw01 = _mm512_permutexvar_ps(idx01, s4), sw23 = _mm512_permutexvar_ps(idx23, s4);
    for (int t = 0; t < T; ++t) {
      const int64_t tb = (t0 + t) * blocks + kb;
      const __m512i xb = _mm512_broadcast_i64x4(_mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(xq.q.data() + (t0 + t) * pc + kb * kQuantBlock)));
      const __m512i c = _mm512_loadu_si512(xq.corr_lanes.data() + tb * 16);
      const __m512 sx = _mm512_set1_ps(xq.scale[tb]);
      f01[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(c, w01, xb)), _mm512_mul_ps(sw01, sx), f01[t]);
      f23[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(c, w23, xb)), _mm512_mul_ps(sw23, sx), f23[t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    float out[4] = {Sum8(_mm512_castps512_ps256(f01[t])), Sum8(_mm512_extractf32x8_ps(f01[t], 1)),
                    Sum8(_mm512_castps512_ps256(f23[t])), Sum8(_mm512_extractf32x8_ps(f23[t], 1))};
    for (int i = 0; i < n_rows; ++i) y[t * ldy + i] = out[i];
  }
}

// q4: a 64-byte vector holds four rows' 16-byte blocks; low nibbles are values 0..15, high nibbles 16..31.
template <int T>
WHALE_VNNI_ATTR void TileQ4Vnni(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq,
                                int64_t t0, float* y, int64_t ldy) {
  const int64_t blocks = xq.blocks, pc = blocks * kQuantBlock;
  const __m512i idx = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  const __m512i low = _mm512_set1_epi8(0x0F);
  __m512 f[T];
  for (int t = 0; t < T; ++t) f[t] = _mm512_setzero_ps();
  const uint8_t* wp = w.data + g * blocks * kQuantRowGroup * 16;
  const uint16_t* sp = w.qscale + g * blocks * kQuantRowGroup;
  for (int64_t kb = 0; kb < blocks; ++kb, wp += 64, sp += 4) {
    const __m512i v = _mm512_loadu_si512(wp);
    const __m512i lo = _mm512_and_si512(v, low), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
    const __m512 sw = _mm512_permutexvar_ps(idx, GroupScales(sp));
    for (int t = 0; t < T; ++t) {
      const int64_t tb = (t0 + t) * blocks + kb;
      const int8_t* xb = xq.q.data() + (t0 + t) * pc + kb * kQuantBlock;
      const __m512i xlo = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xb)));
      const __m512i xhi = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(xb + 16)));
      __m512i a = _mm512_loadu_si512(xq.corr_lanes.data() + tb * 16);
      a = _mm512_dpbusd_epi32(a, lo, xlo);
      a = _mm512_dpbusd_epi32(a, hi, xhi);
      f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), _mm512_mul_ps(sw, _mm512_set1_ps(xq.scale[tb])), f[t]);
    }
  }
  for (int t = 0; t < T; ++t) {
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, f[t]);
    for (int i = 0; i < n_rows; ++i)
      y[t * ldy + i] = (lanes[4 * i] + lanes[4 * i + 1]) + (lanes[4 * i + 2] + lanes[4 * i + 3]);
  }
}

void TileQuantVnni(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq, int64_t t0,
                   int n_tokens, float* y, int64_t ldy) {
  if (xq.type == QuantType::Q8) {
    switch (n_tokens) {
      case 1: TileQ8Vnni<1>(w, g, n_rows, xq, t0, y, ldy); break;
      case 2: TileQ8Vnni<2>(w, g, n_rows, xq, t0, y, ldy); break;
      case 3: TileQ8Vnni<3>(w, g, n_rows, xq, t0, y, ldy); break;
      default: TileQ8Vnni<4>(w, g, n_rows, xq, t0, y, ldy); break;
    }
  } else {
    switch (n_tokens) {
      case 1: TileQ4Vnni<1>(w, g, n_rows, xq, t0, y, ldy); break;
      case 2: TileQ4Vnni<2>(w, g, n_rows, xq, t0, y, ldy); break;
      case 3: TileQ4Vnni<3>(w, g, n_rows, xq, t0, y, ldy); break;
      default: TileQ4Vnni<4>(w, g, n_rows, xq, t0, y, ldy); break;
    }
  }
}
#endif  // HWY_TARGET == HWY_AVX3_DL

void TileQuant(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq, int64_t t0, int n_tokens,
               float* y, int64_t ldy) {
#if HWY_TARGET == HWY_AVX3_DL
  static const bool has_vnni = __builtin_cpu_supports("avx512vnni");
  if (has_vnni) return TileQuantVnni(w, g, n_rows, xq, t0, n_tokens, y, ldy);
#endif
  TileQuantPortable(w, g, n_rows, xq, t0, n_tokens, y, ldy);
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace whale::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace whale::simd {

HWY_EXPORT(DecodeRows);
HWY_EXPORT(TileFloat);
HWY_EXPORT(PanelF32);
HWY_EXPORT(QuantizeActivations);
HWY_EXPORT(TileQuant);
HWY_EXPORT(TargetName);

void decode_rows(const Weight2D& w, int64_t r0, int64_t r1, float* out) {
  HWY_DYNAMIC_DISPATCH(DecodeRows)(w, r0, r1, out);
}

void tile_float(const Weight2D& w, int64_t r0, int n_rows, const float* x, int64_t ldx, int n_tokens, float* y,
                int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(TileFloat)(w, r0, n_rows, x, ldx, n_tokens, y, ldy);
}

void panel_f32(const float* panel, int64_t rows, int64_t k, const float* x, int64_t ldx, int64_t m, float* y,
               int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(PanelF32)(panel, rows, k, x, ldx, m, y, ldy);
}

void quantize_activations(const float* x, int64_t m, int64_t k, int64_t ldx, QuantType t, int64_t padded_cols,
                          QuantizedActivations& out) {
  HWY_DYNAMIC_DISPATCH(QuantizeActivations)(x, m, k, ldx, t, padded_cols, out);
}

void tile_quant(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq, int64_t t0, int n_tokens,
                float* y, int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(TileQuant)(w, g, n_rows, xq, t0, n_tokens, y, ldy);
}

const char* target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

}  // namespace whale::simd
#endif  // HWY_ONCE
