// SIMD kernels behind matmul for float-format weights (F32, BF16, F16, FP8 e4m3): rows decoded to f32 (any format,
// q8/q4 included), dot-product tiles and panels. The q8/q4 int8 tiles are in matmul_simd_quant.cc, their x·W in
// matmul_simd_xw.cc. Compiled once per instruction set by Highway's foreach_target; HWY_DYNAMIC_DISPATCH picks the
// best at run time.

// AVX3_DL (VNNI, VBMI2, ...) is opt-in in Highway 1.0; CMakeLists.txt enables it for every file.
#ifndef HWY_WANT_AVX3_DL
#error "HWY_WANT_AVX3_DL must be defined for every file (CMakeLists.txt): Highway's dispatch index is shared by all"
#endif

#include "whale/kernels/matmul_simd.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "whale/core/cache_line.h"
#include "whale/core/dtype.h"
#include "whale/kernels/quantize.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "whale/kernels/matmul_simd.cc"
#include <hwy/foreach_target.h>  // NOLINT: re-includes this file once per target
#include <hwy/highway.h>
#include <hwy/aligned_allocator.h>
#include <hwy/cache_control.h>

#include "whale/kernels/matmul_simd_vnni-inl.h"

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

#if HWY_TARGET == HWY_AVX3_DL
// Rows [r0, r1) of a q8/q4 weight whose cols are a multiple of 64 (no padding), as f32 (out row stride w.cols): each
// 16-byte quarter of a line (4 rows × 4 columns) is widened, scaled by its rows' f16 scales and stored as four
// 4-float pieces. code · scale is one exact f32 product, as in dequantize_row.
WHALE_VNNI_ATTR void DecodeQuantRowsVnni(const Weight2D& w, int64_t r0, int64_t r1, float* out) {
  const QuantType type = w.dtype == DType::Q8 ? QuantType::Q8 : QuantType::Q4;
  const int64_t k = w.cols, blocks = k / kQuantBlock;
  const int lines = type == QuantType::Q8 ? 8 : 4;
  const int64_t group_bytes = quant_group_bytes(type, k);
  const int n = type == QuantType::Q8 ? 1 : 2;  // code vectors per line quarter
  __m512i quarter_idx[4];
  QuarterRowIndices(quarter_idx);
  for (int64_t g = r0 / kQuantRowGroup; g * kQuantRowGroup < r1; ++g)
    for (int64_t kb = 0; kb < blocks; ++kb) {
      const __m512 sw = GroupBlockScales(w.data + g * group_bytes + quant_scales_in_group(type, kb));
      const uint8_t* gb = w.data + g * group_bytes + quant_block_in_group(type, kb);
      for (int l = 0; l < lines; ++l)
        for (int q = 0; q < 4; ++q) {
          const __m512 s = _mm512_permutexvar_ps(quarter_idx[q], sw);
          __m512 vals[2];
          QuarterCodes(gb + 64 * l + 16 * q, type, vals[0], vals[1]);
          for (int h = 0; h < n; ++h) vals[h] = _mm512_mul_ps(s, vals[h]);
          alignas(64) float tmp[2][16];
          for (int h = 0; h < n; ++h) _mm512_store_ps(tmp[h], vals[h]);
          for (int ii = 0; ii < 4; ++ii) {
            const int64_t r = g * kQuantRowGroup + 4 * q + ii;
            if (r < r0 || r >= r1) continue;
            for (int h = 0; h < n; ++h)
              std::memcpy(out + (r - r0) * k + kb * kQuantBlock + 16 * h + 4 * l, tmp[h] + 4 * ii, 4 * sizeof(float));
          }
        }
    }
}
#endif

void DecodeRows(const Weight2D& w, int64_t r0, int64_t r1, float* out) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t k = w.cols;
  if (w.dtype == DType::Q8 || w.dtype == DType::Q4) {
#if HWY_TARGET == HWY_AVX3_DL
    if (HasVnni() && k == quant_padded_cols(k)) return DecodeQuantRowsVnni(w, r0, r1, out);
#endif
    for (int64_t r = r0; r < r1; ++r) dequantize_row(w, r, out + (r - r0) * k);
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

#ifndef WHALE_FLOAT_PREFETCH_BYTES
#define WHALE_FLOAT_PREFETCH_BYTES 2048
#endif
constexpr size_t kFloatPrefetchBytes = WHALE_FLOAT_PREFETCH_BYTES;

template <int R, int T, class LoadW>
HWY_INLINE void TileFloatT(const LoadW& load, const Weight2D& w, const uint8_t* const rows[], int n_rows,
                           const float* x, int64_t ldx, float* y, int64_t ldy) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t k = w.cols;
  VF acc[R][T];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) acc[r][t] = hn::Zero(df);
  const size_t elem = dtype_size(w.dtype), row_bytes = static_cast<size_t>(k) * elem;
  int64_t c = 0;
  for (; c + N <= k; c += N) {
    VF xv[T];
    for (int t = 0; t < T; ++t) xv[t] = hn::LoadU(df, x + t * ldx + c);
    // Each row is its own stream, a few KB long, which the hardware prefetcher keeps losing at page boundaries:
    // prefetch ahead in software, and near a row's end the same row of the next tile (R rows on, where the
    // checkpoint's row-major rows put it), which this thread usually reads next.
    size_t ahead = static_cast<size_t>(c) * elem + kFloatPrefetchBytes;
    if (ahead >= row_bytes) ahead += (R - 1) * row_bytes;
    for (int r = 0; r < R; ++r) {
      hwy::Prefetch(rows[r] + ahead);
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
  const float* scales[8];  // row r's block scales
  int block_cols;
  VF operator()(int r, int64_t c) const {
    return VecE4m3(DF(), rows[r] + c, hn::Set(DF(), scales[r][c / block_cols] * 256.0f));
  }
  float scalar(int r, int64_t c) const { return e4m3_to_f32(rows[r][c]) * scales[r][c / block_cols]; }
};

// More than 4 rows (up to 8, for at most 2 tokens): one tile of 8 rows, eight streams of weights in flight.
template <class LoadW>
void TileFloatDispatch(const LoadW& load, const Weight2D& w, const uint8_t* const rows[], int n_rows,
                       const float* x, int64_t ldx, int n_tokens, float* y, int64_t ldy) {
  static_assert(kWideFloatTileTokens == 2, "the 8-row instances below take 1 or 2 tokens");
  if (n_rows > 4) {
    if (n_tokens == 1) TileFloatT<8, 1>(load, w, rows, n_rows, x, ldx, y, ldy);
    else TileFloatT<8, 2>(load, w, rows, n_rows, x, ldx, y, ldy);
    return;
  }
  switch (n_tokens) {
    case 1: TileFloatT<4, 1>(load, w, rows, n_rows, x, ldx, y, ldy); break;
    case 2: TileFloatT<4, 2>(load, w, rows, n_rows, x, ldx, y, ldy); break;
    case 3: TileFloatT<4, 3>(load, w, rows, n_rows, x, ldx, y, ldy); break;
    default: TileFloatT<4, 4>(load, w, rows, n_rows, x, ldx, y, ldy); break;
  }
}

void TileFloat(const Weight2D& w, int64_t r0, int n_rows, const float* x, int64_t ldx, int n_tokens, float* y,
               int64_t ldy) {
  const size_t elem = dtype_size(w.dtype);
  const uint8_t* rows[8];
  for (int r = 0; r < 8; ++r) rows[r] = w.data + static_cast<size_t>((r0 + std::min(r, n_rows - 1)) * w.cols) * elem;
  switch (w.dtype) {
    case DType::F32: TileFloatDispatch(LoadF32Rows{rows}, w, rows, n_rows, x, ldx, n_tokens, y, ldy); break;
    case DType::BF16: TileFloatDispatch(LoadBF16Rows{rows}, w, rows, n_rows, x, ldx, n_tokens, y, ldy); break;
    case DType::F16: TileFloatDispatch(LoadF16Rows{rows}, w, rows, n_rows, x, ldx, n_tokens, y, ldy); break;
    case DType::F8_E4M3: {
      LoadFP8Rows load{rows, {}, w.block_cols};
      const int64_t bpr = (w.cols + w.block_cols - 1) / w.block_cols;
      for (int r = 0; r < 8; ++r) load.scales[r] = w.block_scale + ((r0 + std::min(r, n_rows - 1)) / w.block_rows) * bpr;
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
//
// The panel is stored by 4-row group and vector step, [group][c / N][row % 4][N] for c < kv (K rounded down to whole
// vectors), then each row's remaining columns, [row][k - kv]: a step's 4 weight vectors are one run of contiguous
// lines. Row-major, at K = 2048 the 4 rows lay 8 KB apart and their loads fell into one L1 set, beside the tokens'
// (also 8 KB apart). Zen 5, one core, this loop alone over 32 rows × 192 tokens × K 2048: 120 GFLOP/s row-major,
// 132-134 interleaved; `whale bench` BF16 prefill of 512 tokens, 2 threads: 46-50 → 55-59 tok/s.
constexpr int kPanelTokens = 6;
constexpr int64_t kChunk = 512;  // floats of K per chunk: 6 tokens × 2 KB + 4 rows × 2 KB in L1

// Where the rows' tail columns start in a panel of `rows` rows with kv whole-vector columns.
int64_t PanelTailOffset(int64_t rows, int64_t kv) { return (rows + 3) / 4 * 4 * kv; }

// Floats of a panel of `rows` rows of length k in that layout (with one row of decoding scratch after it).
size_t PanelFloats(int64_t rows, int64_t k) {
  const int64_t kv = k - k % static_cast<int64_t>(hn::Lanes(DF()));
  return static_cast<size_t>(PanelTailOffset(rows, kv) + rows * (k - kv) + k);
}

// Decodes rows [r0, r1) of w into panel (PanelFloats(r1 - r0, w.cols) floats, 64-byte aligned). The rows that fill
// out the last group (their results are never stored) repeat its last row or are zero.
void DecodePanel(const Weight2D& w, int64_t r0, int64_t r1, float* panel) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t k = w.cols, kv = k - k % N, rows = r1 - r0, groups = (rows + 3) / 4, steps = kv / N;
  float* tail = panel + PanelTailOffset(rows, kv);
  float* row = tail + rows * (k - kv);
  const size_t elem = dtype_size(w.dtype);
  // BF16 and F16 straight into place, a group's 4 rows step by step so that the panel is written in order (the
  // decode of a prompt's panels is a pass over the weights); the others a row at a time through a decoded row.
  if (w.dtype == DType::BF16 || w.dtype == DType::F16) {
    const bool bf16 = w.dtype == DType::BF16;
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t* src[4];
      for (int i = 0; i < 4; ++i) src[i] = w.data + static_cast<size_t>((r0 + std::min(g * 4 + i, rows - 1)) * k) * elem;
      float* dst = panel + g * 4 * kv;
      for (int64_t s = 0; s < steps; ++s, dst += 4 * N)
        for (int i = 0; i < 4; ++i)
          hn::Store(bf16 ? VecBf16(df, src[i] + 2 * s * N) : VecF16(df, src[i] + 2 * s * N), df, dst + i * N);
    }
    for (int64_t i = 0; i < rows; ++i) {
      const uint8_t* src = w.data + static_cast<size_t>((r0 + i) * k) * elem;
      for (int64_t c = kv; c < k; ++c) tail[i * (k - kv) + c - kv] = ScalarElement(w.dtype, src, c, 1.0f);
    }
    return;
  }
  for (int64_t i = 0; i < groups * 4; ++i) {
    float* dst = panel + (i / 4) * 4 * kv + (i % 4) * N;
    if (i >= rows) {
      for (int64_t s = 0; s < steps; ++s) hn::Store(hn::Zero(df), df, dst + s * 4 * N);
      continue;
    }
    DecodeRows(w, r0 + i, r0 + i + 1, row);
    for (int64_t s = 0; s < steps; ++s) hn::Store(hn::LoadU(df, row + s * N), df, dst + s * 4 * N);
    std::copy(row + kv, row + k, tail + i * (k - kv));
  }
}

// The two panel layouts, as seen by the tiles: a group's 4 weight vectors at a vector step, and a row's columns past
// the last whole vector. Interleaved: decoded as above. RowMajor: F32 weights read in place, [rows, k] (no copy; the
// absorbed attention's scores over the cache are such products).
struct InterleavedPanel {
  const float* base;
  int64_t rows, k, kv;
  const float* tail;  // base + PanelTailOffset(rows, kv)
  struct Steps {
    const float* p;
    HWY_INLINE VF Load(int r) const { return hn::Load(DF(), p + r * hn::Lanes(DF())); }
    HWY_INLINE void Next() { p += 4 * hn::Lanes(DF()); }
  };
  Steps At(int64_t g, int64_t c) const { return {base + g * 4 * kv + c * 4}; }
  float Tail(int64_t r, int64_t c) const { return tail[r * (k - kv) + c - kv]; }
};
struct RowMajorPanel {
  const float* base;
  int64_t rows, k, kv;
  struct Steps {
    const float* row[4];
    int64_t c;
    HWY_INLINE VF Load(int r) const { return hn::LoadU(DF(), row[r] + c); }
    HWY_INLINE void Next() { c += hn::Lanes(DF()); }
  };
  Steps At(int64_t g, int64_t c) const {
    Steps s{{}, c};
    for (int r = 0; r < 4; ++r) s.row[r] = base + std::min(g * 4 + r, rows - 1) * k;
    return s;
  }
  float Tail(int64_t r, int64_t c) const { return base[r * k + c]; }
};

template <int T, class Steps>
HWY_INLINE void PanelChunk(Steps w, const float* const x[T], int64_t c0, int64_t c1, float* acc) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  VF a[4][T];
  for (int r = 0; r < 4; ++r)
    for (int t = 0; t < T; ++t) a[r][t] = hn::Load(df, acc + (r * T + t) * N);
  for (int64_t c = c0; c < c1; c += N, w.Next()) {
    VF xv[T];
    for (int t = 0; t < T; ++t) xv[t] = hn::LoadU(df, x[t] + c);
    for (int r = 0; r < 4; ++r) {
      const VF wv = w.Load(r);
      for (int t = 0; t < T; ++t) a[r][t] = hn::MulAdd(wv, xv[t], a[r][t]);
    }
  }
  for (int r = 0; r < 4; ++r)
    for (int t = 0; t < T; ++t) hn::Store(a[r][t], df, acc + (r * T + t) * N);
}

// acc: groups · 4 · T vectors, 64-byte aligned.
template <int T, class Panel>
void PanelTokens(const Panel& panel, const float* x, int64_t ldx, float* y, int64_t ldy, float* acc) {
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t k = panel.k, kv = panel.kv, rows = panel.rows, groups = (rows + 3) / 4;
  std::fill(acc, acc + groups * 4 * T * N, 0.0f);
  const float* xr[T];
  for (int t = 0; t < T; ++t) xr[t] = x + t * ldx;
  for (int64_t c0 = 0; c0 < kv; c0 += kChunk) {
    const int64_t c1 = std::min(kv, c0 + kChunk);
    for (int64_t g = 0; g < groups; ++g) PanelChunk<T>(panel.At(g, c0), xr, c0, c1, acc + g * 4 * T * N);
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int t = 0; t < T; ++t) {
      float s = hn::GetLane(hn::SumOfLanes(df, hn::Load(df, acc + ((r / 4) * 4 * T + (r % 4) * T + t) * N)));
      for (int64_t c = kv; c < k; ++c) s += panel.Tail(r, c) * xr[t][c];
      y[t * ldy + r] = s;
    }
}

template <class Panel>
void PanelAllTokens(const Panel& panel, const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy) {
  const size_t groups = static_cast<size_t>((panel.rows + 3) / 4);
  auto acc = hwy::AllocateAligned<float>(groups * 4 * kPanelTokens * hn::Lanes(DF()));
  float* a = acc.get();
  for (int64_t t0 = 0; t0 < m; t0 += kPanelTokens) {
    const float* xt = x + t0 * ldx;
    float* yt = y + t0 * ldy;
    switch (std::min<int64_t>(kPanelTokens, m - t0)) {
      case 1: PanelTokens<1>(panel, xt, ldx, yt, ldy, a); break;
      case 2: PanelTokens<2>(panel, xt, ldx, yt, ldy, a); break;
      case 3: PanelTokens<3>(panel, xt, ldx, yt, ldy, a); break;
      case 4: PanelTokens<4>(panel, xt, ldx, yt, ldy, a); break;
      case 5: PanelTokens<5>(panel, xt, ldx, yt, ldy, a); break;
      default: PanelTokens<6>(panel, xt, ldx, yt, ldy, a); break;
    }
  }
}

void PanelRows(const Weight2D& w, int64_t r0, int64_t r1, const float* x, int64_t ldx, int64_t m, float* y,
               int64_t ldy, std::vector<float>& scratch) {
  const int64_t rows = r1 - r0, k = w.cols, kv = k - k % static_cast<int64_t>(hn::Lanes(DF()));
  if (w.dtype == DType::F32 && reinterpret_cast<uintptr_t>(w.data) % alignof(float) == 0) {
    return PanelAllTokens(RowMajorPanel{reinterpret_cast<const float*>(w.data) + r0 * k, rows, k, kv}, x, ldx, m, y,
                          ldy);
  }
  // The panel at the first 64-byte boundary of the scratch (reused from call to call: a fresh allocation of this size
  // per panel would map and unmap pages every time).
  scratch.resize(PanelFloats(rows, k) + kCacheLine / sizeof(float));
  float* panel = align_to_cache_line(scratch.data());
  DecodePanel(w, r0, r1, panel);
  PanelAllTokens(InterleavedPanel{panel, rows, k, kv, panel + PanelTailOffset(rows, kv)}, x, ldx, m, y, ldy);
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace whale::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace whale::simd {

HWY_EXPORT(DecodeRows);
HWY_EXPORT(TileFloat);
HWY_EXPORT(PanelRows);
HWY_EXPORT(TargetName);

void decode_rows(const Weight2D& w, int64_t r0, int64_t r1, float* out) {
  HWY_DYNAMIC_DISPATCH(DecodeRows)(w, r0, r1, out);
}

void tile_float(const Weight2D& w, int64_t r0, int n_rows, const float* x, int64_t ldx, int n_tokens, float* y,
                int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(TileFloat)(w, r0, n_rows, x, ldx, n_tokens, y, ldy);
}

void panel_rows(const Weight2D& w, int64_t r0, int64_t r1, const float* x, int64_t ldx, int64_t m, float* y,
                int64_t ldy, std::vector<float>& panel) {
  HWY_DYNAMIC_DISPATCH(PanelRows)(w, r0, r1, x, ldx, m, y, ldy, panel);
}

const char* target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

}  // namespace whale::simd
#endif  // HWY_ONCE
