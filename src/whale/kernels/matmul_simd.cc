// SIMD kernels behind matmul: weight decoding, float dot-product tiles, and int8 tiles for q8/q4 weights.
// Compiled once per instruction set by Highway's foreach_target; HWY_DYNAMIC_DISPATCH picks the best at run time.
// On AVX-512 with VNNI (Highway's AVX3_DL target) the q8/q4 tiles use vpdpbusd directly; elsewhere they fall back to
// exact integer arithmetic in portable code.

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

#if HWY_TARGET == HWY_AVX3_DL
#define WHALE_VNNI_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c")))

// Permutations that spread a group's 16 per-row values (scales, or x·s) over a line quarter's lanes: quarter q of a
// 64-byte line holds rows 4q..4q+3 × 4 columns, lane 4·i + c for row 4q + i, so lane l takes value 4q + l/4.
WHALE_VNNI_ATTR inline void QuarterRowIndices(__m512i idx[4]) {
  for (int q = 0; q < 4; ++q)
    idx[q] = _mm512_set_epi32(4 * q + 3, 4 * q + 3, 4 * q + 3, 4 * q + 3, 4 * q + 2, 4 * q + 2, 4 * q + 2, 4 * q + 2,
                              4 * q + 1, 4 * q + 1, 4 * q + 1, 4 * q + 1, 4 * q, 4 * q, 4 * q, 4 * q);
}

// Whether the CPU has the VNNI instructions this target's q8/q4 kernels use (Highway's AVX3_DL implies them, but is
// also picked for CPUs where only the rest of the set is checked).
inline bool HasVnni() {
  static const bool has = __builtin_cpu_supports("avx512vnni");
  return has;
}

// The 16 f16 scales of one group block (row i of the group in lane i) as f32, from their place in the superblock.
WHALE_VNNI_ATTR inline __m512 GroupBlockScales(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// The signed codes q of a line quarter (16 bytes: 4 rows × 4 columns) as f32, lane 4·i + c: q8 the bytes minus 128;
// q4 the low nibbles minus 8 in lo and the high nibbles (the columns 16 further on) minus 8 in hi.
WHALE_VNNI_ATTR inline void QuarterCodes(const uint8_t* p, QuantType type, __m512& lo, __m512& hi) {
  const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  if (type == QuantType::Q8) {
    lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(v, _mm512_set1_epi32(128)));
    return;
  }
  // A nibble's value as a lookup of 16 floats (code − 8 exactly): vpermps reads only an index's low 4 bits, so the
  // low nibble needs no mask. Two operations per vector fewer than masking, subtracting and converting, which made
  // x·W (absorbed attention's W_UK in decode) bound by arithmetic at about 4 GB/s per thread.
  const __m512 values = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
  lo = _mm512_permutexvar_ps(v, values);
  hi = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), values);
}

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

// ---------------------------------------------------------------------------------------------------------------
// Activation quantization and q8/q4 tiles.

// Portable: exact integer dot per block, then y = Σ_b fma(float(dot_b + corr_b), s_w · s_x, y), block by block: the
// same operations in the same order as the vector tiles, so every instruction set gives bitwise equal results.
void TileQuantPortable(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq, int64_t t0,
                       int n_tokens, float* y, int64_t ldy) {
  const QuantType type = xq.type;
  const int64_t pc = xq.blocks * kQuantBlock;
  std::vector<int> codes(static_cast<size_t>(pc));
  for (int i = 0; i < n_rows; ++i) {
    const int64_t r = g * kQuantRowGroup + i;
    for (int64_t c = 0; c < pc; ++c) {
      const QuantCodePosition p = quant_code_position(type, pc, r, c);
      codes[c] = (type == QuantType::Q8 ? w.data[p.byte] : (w.data[p.byte] >> (p.high_nibble ? 4 : 0)) & 0xF);
    }
    for (int t = 0; t < n_tokens; ++t) {
      const int8_t* xrow = xq.q.data() + (t0 + t) * pc;
      float acc = 0.0f;
      for (int64_t kb = 0; kb < xq.blocks; ++kb) {
        int32_t dot = xq.corr[(t0 + t) * xq.blocks + kb];
        for (int64_t c = kb * kQuantBlock; c < (kb + 1) * kQuantBlock; ++c) dot += codes[c] * xrow[c];
        const float sw = f16_to_f32(quant_scale_bits(w, r, kb));
        acc = std::fma(static_cast<float>(dot), sw * xq.scale[(t0 + t) * xq.blocks + kb], acc);
      }
      y[t * ldy + i] = acc;
    }
  }
}

#if HWY_TARGET == HWY_AVX3_DL

// Software prefetch for streamed weights: the hardware prefetcher alone leaves decode waiting on memory. Two
// distances: far ahead into L2, so that enough lines are in flight to draw the memory's bandwidth while the core
// computes, and near ahead into L1, so that the loads find them there. The scales' lines, in the same stream, get
// the same prefetches (when they were a second stream, without a prefetch each of their lines was a miss the core
// waited for). Measured on a 2-vCPU Xeon (model 207), q4 decode over 1.5 GB of experts: 83% of the read probe with
// one 2 KB L1 distance, 95% with an 8 KB far distance. The AMD Zen 4 and Zen 5 VMs do better with 32 KB
// (docs/performance.md, sessions 27-28): on Zen 4 decode_stream_bench q4 70 → 83% of the probe and `whale bench`
// decode 4-9% faster, 64 KB slower again; on Zen 5 q8 decode 3-15% faster, q4 level. A prefetch past a group's end
// fetches a following group (several where groups are under 32 KB), usually this thread's next.
#ifndef WHALE_PREFETCH_FAR_BYTES
#define WHALE_PREFETCH_FAR_BYTES 32768
#endif
#ifndef WHALE_PREFETCH_NEAR_BYTES
#define WHALE_PREFETCH_NEAR_BYTES 1024
#endif
constexpr int64_t kPrefetchFarBytes = WHALE_PREFETCH_FAR_BYTES;
constexpr int64_t kPrefetchNearBytes = WHALE_PREFETCH_NEAR_BYTES;

// The prefetches for one line of a group's stream (a code line, or a superblock's scale line): far and near
// successors. The scales ride in the same stream, one line per superblock, and get the same two prefetches.
WHALE_VNNI_ATTR inline void PrefetchGroupLine(const uint8_t* line) {
  _mm_prefetch(reinterpret_cast<const char*>(line + kPrefetchFarBytes), _MM_HINT_T1);
  _mm_prefetch(reinterpret_cast<const char*>(line + kPrefetchNearBytes), _MM_HINT_T0);
}

// The prefetches for a four (G = 4: four adjacent groups read side by side, one stream each). There the far distance
// above, at least a group, lands in lines another of the four streams is reading (at K = 2048 a q8 group is 34 KB:
// each stream's far prefetch hit the next stream's current lines), and the four streams are enough to draw the
// bandwidth: each stream prefetches its own lines into L1 only, kQuadAheadSuperblocks superblocks ahead. `whale bench
// -p 0 -n 32` on the Zen 5 VM, alternated with the binary before (session 35, docs/performance.md, then 4 KB in the
// separate-scales layout): q8 16.7-18.1 → 18.2-19.6 tok/s over 7 rounds, q4 27.6-28.0 → 29.3-30.1 over 4; 2 and 6 KB
// measured the same as 4, 8 KB lower. With superblocks (session 43) 4 of them, q8 4352 bytes and q4 2304: q4 against
// 7 superblocks (4032 bytes) 1.022x and 1.024x (10 and 12 rounds, ahead in 7 and 9), 12 superblocks 0.865x; q8 at 2
// superblocks (2176 bytes) 0.958x against 4 (10 rounds).
#ifndef WHALE_QUAD_AHEAD_SUPERBLOCKS
#define WHALE_QUAD_AHEAD_SUPERBLOCKS 4
#endif
inline constexpr int64_t kQuadAheadSuperblocks = WHALE_QUAD_AHEAD_SUPERBLOCKS;
// Near a group's end the distance reaches past it, into the group after, which is the next stream of the same four and
// already read: there it skips the rest of the four (3 groups) to the same stream of the next four, which this thread
// usually reads next. Superblock sb's distance in bytes (a superblock's lines cross a group's end together).
template <QuantType type>
inline int64_t quad_ahead(int64_t sb, int64_t superblocks, int64_t group_bytes) {
  constexpr int64_t d = kQuadAheadSuperblocks * quant_superblock_bytes(type);
  return sb + kQuadAheadSuperblocks >= superblocks ? d + 3 * group_bytes : d;
}
// Which code lines of a block prefetch: l % kQuadCodePrefetchEvery == 0. q8 prefetches only a block's first line (one
// per 512 bytes, the hardware's stream prefetcher fetching the rest): `whale bench --model .../v2lite-bench-q8 -p 0
// -n 32`, alternated with every line prefetched (session 40, Zen 5 VM), paired medians 1.046x, 1.060x, 1.041x and
// 1.038x over 10-12 rounds, ahead in 8 of 10-12 each; decode_stream_bench q8 2-9% faster in 3 rounds. q4 keeps a
// prefetch per line: every 2 lines measured 0.78x, every 4 lines 0.90x (8-10 rounds each). Both prefetch the scale
// line of each superblock, with the second block's first code line.
template <QuantType type>
inline constexpr int kQuadCodePrefetchEvery = type == QuantType::Q8 ? 8 : 1;
// Line l of block kb (its codes at bp, its superblock's scale line at scale_line), `ahead` bytes on. Always inlined:
// left to GCC 12, its partial inlining of this function dropped every prefetch from TileQ8Vnni<1, 4> (q8 decode 0.92x
// of the separate-scales layout, session 43; objdump counted none).
template <QuantType type>
WHALE_VNNI_ATTR HWY_INLINE void PrefetchQuadLineAt(const uint8_t* bp, const uint8_t* scale_line, int64_t kb, int l,
                                                   int64_t ahead) {
  if (l % kQuadCodePrefetchEvery<type> == 0)
    _mm_prefetch(reinterpret_cast<const char*>(bp + 64 * l + ahead), _MM_HINT_T0);
  if (l == 0 && kb % kQuantSuperBlocks == kQuantSuperBlocks - 1)
    _mm_prefetch(reinterpret_cast<const char*>(scale_line + ahead), _MM_HINT_T0);
}

// Where block kb's superblock keeps its scale line, in bytes from the block's codes.
template <QuantType type>
inline int64_t ScaleLineFromCodes(int64_t kb) {
  return kQuantScalesAt(type) - kQuantCodesAt - kb % kQuantSuperBlocks * quant_group_block_bytes(type);
}

WHALE_VNNI_ATTR inline __m512i Broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

WHALE_VNNI_ATTR inline void StoreRows(float* y, int n_rows, __m512 v) {
  if (n_rows == kQuantRowGroup) _mm512_storeu_ps(y, v);
  else _mm512_mask_storeu_ps(y, static_cast<__mmask16>((1u << n_rows) - 1), v);
}

// Tokens [t0, t0 + T) of the tiled activations (QuantizedActivations), all in one tile (the callers check): a tile's
// tokens are its blocks' rows, so a later start within the tile is an offset, the strides unchanged.
struct TiledTokens {
  const int8_t* q;
  const int32_t* corr;
  const float* scale;
};
constexpr int64_t kTiledBlockBytes = kQuantTileTokens * kQuantBlock;  // one block of a tile's codes
inline TiledTokens TiledAt(const QuantizedActivations& xq, int64_t t0) {
  const int64_t tile = t0 / kQuantTileTokens, sub = t0 % kQuantTileTokens;
  return {xq.tiled_q.data() + tile * xq.blocks * kTiledBlockBytes + sub * kQuantBlock,
          xq.tiled_corr.data() + tile * xq.blocks * kQuantTileTokens + sub,
          xq.tiled_scale.data() + tile * xq.blocks * kQuantTileTokens + sub};
}

// The activations a tile of T tokens reads, and how far each block moves them (codes; sums and scales): several
// tokens read the tiled copy, where a block's tokens are adjacent; one token reads its own row, 32 codes and one sum
// and scale per block, so that a pass over K touches 36 lines of them instead of about 100 (the tiled copy spreads a
// lone token's 2 KB of codes over 16 KB), lines the weights streaming through L1 would otherwise evict.
template <int T>
inline constexpr int64_t kTokenCodeStep = T == 1 ? kQuantBlock : kTiledBlockBytes;
template <int T>
inline constexpr int64_t kTokenBlockStep = T == 1 ? 1 : kQuantTileTokens;
template <int T>
inline TiledTokens TokensAt(const QuantizedActivations& xq, int64_t t0) {
  if constexpr (T == 1)
    return {xq.q.data() + t0 * xq.blocks * kQuantBlock, xq.corr.data() + t0 * xq.blocks,
            xq.scale.data() + t0 * xq.blocks};
  else
    return TiledAt(xq, t0);
}

// One 16-row group × T tokens, every row in its own lane. Each 64-byte line (4 columns × 16 rows) meets 4 activation
// bytes broadcast to all lanes in one vpdpbusd (unsigned weight code × signed activation). A block's integer sums
// start at the bias correction −bias·Σq_x, then go to f32 once per block: f = fma(float(sum), s_w · s_x, f). Few
// tokens get two integer accumulators each (even and odd lines; integer sums are exact, so the split changes nothing)
// to overlap vpdpbusd's latency.
// G = 2 or 4: adjacent row groups at once (the last with n_rows rows, the others full), their lines read side by
// side: G streams of weights in flight instead of one, and the same arithmetic per group as G = 1 (bitwise equal
// results).
template <int T, int G = 1>
WHALE_VNNI_ATTR void TileQ8Vnni(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq,
                                int64_t t0, float* y, int64_t ldy) {
  constexpr int A = T <= 2 ? 2 : 1;
  constexpr QuantType kType = QuantType::Q8;
  constexpr int64_t kBlockStep = quant_group_block_bytes(kType), kSuperStep = kBlockStep + kQuantScaleLineBytes;
  const int64_t blocks = xq.blocks, group_bytes = quant_group_bytes(kType, blocks * kQuantBlock);
  const uint8_t* const wg = w.data + g * group_bytes;
  const TiledTokens x = TokensAt<T>(xq, t0);
  const int8_t* xb = x.q;
  const int32_t* corr = x.corr;
  const float* sx = x.scale;
  __m512 f[G][T];
  // Unrolled: left as a loop, GCC zeroes the array with `rep stos` on the stack (2.2% of TileQ4Vnni<8>'s samples in a
  // q4 prompt, perf).
#pragma GCC unroll 16
  for (int i = 0; i < G * T; ++i) f[i / T][i % T] = _mm512_setzero_ps();
  // wp: block kb's codes, one group block on from the last, or past the superblock's scale line after a pair.
  const uint8_t* wp = wg + kQuantCodesAt;
  for (int64_t kb = 0; kb < blocks; ++kb, xb += kTokenCodeStep<T>, corr += kTokenBlockStep<T>,
               sx += kTokenBlockStep<T>, wp += kb % kQuantSuperBlocks == 0 ? kSuperStep : kBlockStep) {
    __m512i acc[G][T][A];
    for (int i = 0; i < G; ++i)
      for (int t = 0; t < T; ++t) {
        acc[i][t][0] = _mm512_set1_epi32(corr[t]);
        if constexpr (A == 2) acc[i][t][1] = _mm512_setzero_si512();
      }
    const int64_t scale_line = ScaleLineFromCodes<kType>(kb);
    // Each group's block as a pointer of its own: left as wp + i·group_bytes, GCC kept an offset per group and line
    // in vector registers, moving it to a general one for each load (TileQ8Vnni<1, 4>: 34 such moves).
    const uint8_t* bp[G];
    for (int i = 0; i < G; ++i) bp[i] = wp + i * group_bytes;
    const int64_t ahead =
        G == 4 ? quad_ahead<kType>(kb / kQuantSuperBlocks, blocks / kQuantSuperBlocks, group_bytes) : 0;
    // WHALE_VNNI_ATTR again: clang does not give a lambda the target of the function around it.
    const auto line = [&](int l) WHALE_VNNI_ATTR {
      for (int i = 0; i < G; ++i) {
        if constexpr (G == 4) {
          PrefetchQuadLineAt<kType>(bp[i], bp[i] + scale_line, kb, l, ahead);
        } else {
          PrefetchGroupLine(bp[i] + 64 * l);
          if (l == 0 && kb % kQuantSuperBlocks == 0) PrefetchGroupLine(bp[i] + scale_line);
        }
      }
      __m512i wv[G];
      for (int i = 0; i < G; ++i) wv[i] = _mm512_loadu_si512(bp[i] + 64 * l);
      for (int t = 0; t < T; ++t) {
        const __m512i xv = Broadcast4(xb + t * kQuantBlock + 4 * l);
        for (int i = 0; i < G; ++i) acc[i][t][l % A] = _mm512_dpbusd_epi32(acc[i][t][l % A], wv[i], xv);
      }
    };
    // The 8 lines unrolled by force: left to GCC, the loop over lines stays a loop from 2 tokens on, and its
    // accumulators (indexed by l % A) are copied between registers around every vpdpbusd (TileQ8Vnni<8, 1>: 47
    // instructions per line for 8 vpdpbusd; 26 unrolled). matmul_bench q8 expert, 8 and 64 tokens, 1 and 2 threads:
    // 5-15% faster in each of 3 alternated rounds. One token over a pair keeps GCC's own choice, which unrolls the
    // lines anyway: forcing it streamed 10% slower (decode_stream_bench q8).
    if constexpr (T == 1 && G == 2) {
      for (int l = 0; l < 8; ++l) line(l);
    } else {
#pragma GCC unroll 8
      for (int l = 0; l < 8; ++l) line(l);
    }
    for (int i = 0; i < G; ++i) {
      const __m512 sw = GroupBlockScales(bp[i] + scale_line + kb % kQuantSuperBlocks * kQuantRowGroup * 2);
      for (int t = 0; t < T; ++t) {
        __m512i a = acc[i][t][0];
        if constexpr (A == 2) a = _mm512_add_epi32(a, acc[i][t][1]);
        f[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), _mm512_mul_ps(sw, _mm512_set1_ps(sx[t])), f[i][t]);
      }
    }
  }
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < G; ++i)
      StoreRows(y + t * ldy + i * kQuantRowGroup, i + 1 < G ? kQuantRowGroup : n_rows, f[i][t]);
}

// q4: 4 lines per block; a line's low nibbles are columns 4l..4l+3, its high nibbles columns 16+4l..16+4l+3. The high
// nibbles are used in place, masked but not shifted: their products are 16× too large, which one exact shift of the
// integer sum per block undoes (saving a shift per line).
// From this many tokens on, TileQ4Vnni keeps one accumulator per token; fewer tokens keep two (low and high nibbles),
// so that one token's sums are two dependency chains, not one.
constexpr int kQ4OneAccumulatorTokens = 4;

// G = 2 or 4: adjacent row groups at once, as TileQ8Vnni. Prefetch = false: no software prefetches (a later pass over
// a pair the first pass fetched).
template <int T, int G = 1, bool Prefetch = true>
WHALE_VNNI_ATTR void TileQ4Vnni(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq,
                                int64_t t0, float* y, int64_t ldy) {
  constexpr QuantType kType = QuantType::Q4;
  const int64_t blocks = xq.blocks, group_bytes = quant_group_bytes(kType, blocks * kQuantBlock);
  const uint8_t* const wg = w.data + g * group_bytes;
  const TiledTokens tiled = TokensAt<T>(xq, t0);
  const int8_t* xb = tiled.q;
  const int32_t* corr = tiled.corr;
  const float* sx = tiled.scale;
  const __m512i low = _mm512_set1_epi8(0x0F), high = _mm512_set1_epi8(static_cast<char>(0xF0));
  __m512 f[G][T];
  // Unrolled: left as a loop, GCC zeroes the array with `rep stos` on the stack (2.2% of TileQ4Vnni<8>'s samples in a
  // q4 prompt, perf).
#pragma GCC unroll 16
  for (int i = 0; i < G * T; ++i) f[i / T][i % T] = _mm512_setzero_ps();
  // Many tokens: one accumulator per token, the high nibbles shifted down once per line for all of them, so that
  // each token's block ends in 3 vector operations instead of 5. Few tokens: two, the high nibbles used in place
  // and one shift per block. The integer sums are the same.
  constexpr bool kOne = T >= kQ4OneAccumulatorTokens;
  for (int64_t kb = 0; kb < blocks; ++kb, xb += kTokenCodeStep<T>, corr += kTokenBlockStep<T>,
               sx += kTokenBlockStep<T>) {
    __m512i acc_lo[G][T], acc_hi[G][kOne ? 1 : T];
    for (int i = 0; i < G; ++i)
      for (int t = 0; t < T; ++t) {
        acc_lo[i][t] = _mm512_set1_epi32(corr[t]);
        if constexpr (!kOne) acc_hi[i][t] = _mm512_setzero_si512();
      }
    // Addresses recomputed from the group's start for every block, not advanced as TileQ8Vnni's: GCC then keeps an
    // offset per group and line in vector registers (about 16 register moves per block), which measured faster for
    // this tile: q4 decode 1.047x against 0.975x the separate-scales layout (`whale bench -p 0 -n 32`, 10 alternated
    // rounds, Zen 5 VM, session 43). TileQ8Vnni the other way round: 0.86x this way, 0.99x with pointers per group.
    const uint8_t* const wp = wg + quant_block_in_group(kType, kb);
    const uint8_t* const scale_line =
        wg + kb / kQuantSuperBlocks * quant_superblock_bytes(kType) + kQuantScalesAt(kType);
    const int64_t ahead =
        G == 4 ? quad_ahead<kType>(kb / kQuantSuperBlocks, blocks / kQuantSuperBlocks, group_bytes) : 0;
    // WHALE_VNNI_ATTR again: clang does not give a lambda the target of the function around it.
    const auto line = [&](int l) WHALE_VNNI_ATTR {
      __m512i lo[G], hi[G];
      for (int i = 0; i < G; ++i) {
        if constexpr (Prefetch && G == 4) {
          PrefetchQuadLineAt<kType>(wp + i * group_bytes, scale_line + i * group_bytes, kb, l, ahead);
        } else if constexpr (Prefetch) {
          PrefetchGroupLine(wp + i * group_bytes + 64 * l);
          if (l == 0 && kb % kQuantSuperBlocks == 0) PrefetchGroupLine(scale_line + i * group_bytes);
        }
        const __m512i v = _mm512_loadu_si512(wp + i * group_bytes + 64 * l);
        lo[i] = _mm512_and_si512(v, low);
        hi[i] = kOne ? _mm512_and_si512(_mm512_srli_epi16(v, 4), low) : _mm512_and_si512(v, high);
      }
      for (int t = 0; t < T; ++t) {
        const int8_t* x = xb + t * kQuantBlock + 4 * l;
        const __m512i xl = Broadcast4(x), xh = Broadcast4(x + 16);
        for (int i = 0; i < G; ++i) {
          acc_lo[i][t] = _mm512_dpbusd_epi32(acc_lo[i][t], lo[i], xl);
          __m512i& acc = kOne ? acc_lo[i][t] : acc_hi[i][kOne ? 0 : t];
          acc = _mm512_dpbusd_epi32(acc, hi[i], xh);
        }
      }
    };
    // From 5 tokens on over a pair, the lines unrolled by force, as in TileQ8Vnni: left to GCC they stay a loop, with
    // about 28 register copies of the accumulators per line for 24 vpdpbusd (TileQ4Vnni<6, 2>). Fewer tokens keep
    // GCC's own code, which unrolls them anyway. matmul_bench q4 expert at 6 tokens over 8 (4 + 4, unchanged), 4
    // alternated rounds, 1 and 2 threads: 0.80-1.03x before, 0.97-1.13x after (one outlier at 1.69x).
    if constexpr (G == 1 || T <= 4) {
      for (int l = 0; l < 4; ++l) line(l);
    } else {
#pragma GCC unroll 4
      for (int l = 0; l < 4; ++l) line(l);
    }
    const auto block_end = [&](int i) WHALE_VNNI_ATTR {
      const __m512 sw = GroupBlockScales(wg + i * group_bytes + quant_scales_in_group(kType, kb));
      for (int t = 0; t < T; ++t) {
        __m512i a = acc_lo[i][t];
        if constexpr (!kOne) a = _mm512_add_epi32(a, _mm512_srai_epi32(acc_hi[i][t], 4));
        f[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), _mm512_mul_ps(sw, _mm512_set1_ps(sx[t])), f[i][t]);
      }
    };
    // One token over four groups (decode): the four block ends left a loop, which GCC compiles with the accumulators
    // passing through the stack. Unrolled (GCC -O3's choice), the tile streamed slower: `whale bench` q4 decode 1.042x
    // and 1.068x faster this way (10 alternated rounds each, ahead in 7 and 8; Zen 5 VM, session 45). Why is not known
    // (the VM has no performance counters). A scratch loop with this tile's arithmetic and prefetches read 88% of the
    // probe on one core built at -O2, which leaves such loops rolled, and 75% at -O3 (-O2 -fpeel-loops alone: 75%).
    // The q8 tile measured 0.93x this way.
    if constexpr (T == 1 && G == 4) {
#pragma GCC unroll 1
      for (int i = 0; i < G; ++i) block_end(i);
    } else {
      for (int i = 0; i < G; ++i) block_end(i);
    }
  }
  for (int t = 0; t < T; ++t)
    for (int i = 0; i < G; ++i)
      StoreRows(y + t * ldy + i * kQuantRowGroup, i + 1 < G ? kQuantRowGroup : n_rows, f[i][t]);
}

template <int T>
struct Q8Tile {
  static void run(const Weight2D& w, int64_t g, int n, const QuantizedActivations& xq, int64_t t0, float* y,
                  int64_t ldy) {
    TileQ8Vnni<T>(w, g, n, xq, t0, y, ldy);
  }
};
template <int T>
struct Q4Tile {
  static void run(const Weight2D& w, int64_t g, int n, const QuantizedActivations& xq, int64_t t0, float* y,
                  int64_t ldy) {
    TileQ4Vnni<T>(w, g, n, xq, t0, y, ldy);
  }
};

template <template <int> class Tile>
void TileTokens(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq, int64_t t0, int n_tokens,
                float* y, int64_t ldy) {
  switch (n_tokens) {
    case 1: Tile<1>::run(w, g, n_rows, xq, t0, y, ldy); break;
    case 2: Tile<2>::run(w, g, n_rows, xq, t0, y, ldy); break;
    case 3: Tile<3>::run(w, g, n_rows, xq, t0, y, ldy); break;
    case 4: Tile<4>::run(w, g, n_rows, xq, t0, y, ldy); break;
    case 5: Tile<5>::run(w, g, n_rows, xq, t0, y, ldy); break;
    case 6: Tile<6>::run(w, g, n_rows, xq, t0, y, ldy); break;
    case 7: Tile<7>::run(w, g, n_rows, xq, t0, y, ldy); break;
    default: Tile<8>::run(w, g, n_rows, xq, t0, y, ldy); break;
  }
}

// x·W over rows [16·g0, 16·g0 + 16·groups) of a q8/q4 weight: y[t, c] += Σ_i x[t, i] · W[16·g0 + i, c]. Within a
// line (4 columns × 16 rows, 4 bytes per row) each 16-byte quarter holds 4 rows × 4 columns; it is widened to 16
// floats once and multiplied by the matching rows' x·s of every token of the chunk (one vector per token and quarter,
// built per block column), and a column's four partial sums are added at the end. A token's sums take the same
// operations in the same order whatever the other tokens: bitwise the results of one token at a time. Several tokens
// per widened line matter: one token's two accumulators are chains of 4-cycle FMAs.
constexpr int kXwChunkTokens = 4;
// Each line read prefetches the same line of its group this many blocks on (one superblock), into L1; in the last
// blocks, the first blocks of the rows `ahead` groups on (the caller's next rows). Scale lines likewise, one per
// superblock. Prefetching the whole next call's rows a line per line read, into L2, instead: absorbed attention's q8
// W_UK 49-63 µs per layer and thread (8 heads) against 38-42 (Zen 5 VM, session 37; q4 level).
constexpr int64_t kXwPrefetchBlocks = kQuantSuperBlocks;

// Tokens [0, MT) of x (row stride ldx) into y (row stride ldy); xs: scratch of MT · groups · 64 floats, 64-byte aligned.
template <int MT>
WHALE_VNNI_ATTR void XwQuantChunk(const Weight2D& w, QuantType type, int64_t g0, int64_t groups, const float* x,
                                  int64_t ldx, float* xs, float* y, int64_t ldy, int64_t ahead) {
  const int64_t blocks = quant_padded_cols(w.cols) / kQuantBlock;
  const int lines = type == QuantType::Q8 ? 8 : 4;
  const int64_t group_bytes = quant_group_bytes(type, blocks * kQuantBlock);
  const uint8_t* const w0 = w.data + g0 * group_bytes;
  __m512i quarter_idx[4];
  QuarterRowIndices(quarter_idx);
  const int64_t token_floats = groups * 4 * 16;  // xs per token: [groups][4][16], for the block column kb
  auto columns = [](__m512 v) {  // lanes (row in quarter, column): add the four rows of each column
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  };
  // Block kb's codes (and scales) kXwPrefetchBlocks on, or in the last blocks those of the rows `ahead` groups on, as
  // an offset from block kb's own (0: no prefetch).
  const auto block_at = [&](int64_t kb, bool scales) {
    return scales ? quant_scales_in_group(type, kb) : quant_block_in_group(type, kb);
  };
  for (int64_t kb = 0; kb < blocks; ++kb) {
    const bool within = kb + kXwPrefetchBlocks < blocks;
    const auto skip_to = [&](bool scales) -> int64_t {
      if (within) return block_at(kb + kXwPrefetchBlocks, scales) - block_at(kb, scales);
      if (ahead == 0) return 0;
      return ahead * group_bytes + block_at(kb + kXwPrefetchBlocks - blocks, scales) - block_at(kb, scales);
    };
    const int64_t skip = skip_to(false), scale_skip = kb % kQuantSuperBlocks == 0 ? skip_to(true) : 0;
    for (int t = 0; t < MT; ++t)
      for (int64_t g = 0; g < groups; ++g) {
        const uint8_t* sp = w0 + g * group_bytes + quant_scales_in_group(type, kb);
        if (scale_skip != 0 && t == 0) _mm_prefetch(reinterpret_cast<const char*>(sp + scale_skip), _MM_HINT_T0);
        const __m512 as = _mm512_mul_ps(_mm512_loadu_ps(x + t * ldx + g * kQuantRowGroup), GroupBlockScales(sp));
        for (int k = 0; k < 4; ++k)
          _mm512_store_ps(xs + t * token_floats + (g * 4 + k) * 16, _mm512_permutexvar_ps(quarter_idx[k], as));
      }
    for (int l = 0; l < lines; ++l) {
      __m512 lo_acc[MT], hi_acc[MT];
      for (int t = 0; t < MT; ++t) lo_acc[t] = hi_acc[t] = _mm512_setzero_ps();
      for (int64_t g = 0; g < groups; ++g) {
        const uint8_t* line = w0 + g * group_bytes + quant_block_in_group(type, kb) + 64 * l;
        if (skip != 0) _mm_prefetch(reinterpret_cast<const char*>(line + skip), _MM_HINT_T0);
        for (int k = 0; k < 4; ++k) {
          __m512 lo, hi;
          QuarterCodes(line + 16 * k, type, lo, hi);
          for (int t = 0; t < MT; ++t) {
            const __m512 ak = _mm512_load_ps(xs + t * token_floats + (g * 4 + k) * 16);
            lo_acc[t] = _mm512_fmadd_ps(lo, ak, lo_acc[t]);
            if (type == QuantType::Q4) hi_acc[t] = _mm512_fmadd_ps(hi, ak, hi_acc[t]);
          }
        }
      }
      const int64_t c = kb * kQuantBlock + 4 * l;
      for (int t = 0; t < MT; ++t) {
        float* yt = y + t * ldy;
        auto add_to = [&](int64_t col, __m128 v) {
          if (col + 4 <= w.cols) {
            _mm_storeu_ps(yt + col, _mm_add_ps(_mm_loadu_ps(yt + col), v));
          } else {
            alignas(16) float tmp[4];
            _mm_store_ps(tmp, v);
            for (int j = 0; j < 4 && col + j < w.cols; ++j) yt[col + j] += tmp[j];
          }
        };
        if (c < w.cols) add_to(c, columns(lo_acc[t]));
        if (type == QuantType::Q4 && c + 16 < w.cols) add_to(c + 16, columns(hi_acc[t]));
      }
    }
  }
}

WHALE_VNNI_ATTR void XwQuantVnni(const Weight2D& w, int64_t g0, int64_t groups, const float* x, int64_t ldx,
                                 int64_t m, float* y, int64_t ldy, int64_t prefetch_g0) {
  const QuantType type = w.dtype == DType::Q8 ? QuantType::Q8 : QuantType::Q4;
  auto xs = hwy::AllocateAligned<float>(static_cast<size_t>(std::min<int64_t>(m, kXwChunkTokens) * groups * 4 * 16));
  // The rows to prefetch next are this call's shifted by `ahead` groups (kXwPrefetchBlocks).
  const int64_t ahead = prefetch_g0 >= 0 ? prefetch_g0 - g0 : 0;
  for (int64_t t0 = 0; t0 < m; t0 += kXwChunkTokens) {
    const int mt = static_cast<int>(std::min<int64_t>(kXwChunkTokens, m - t0));
    const float* xt = x + t0 * ldx;
    float* yt = y + t0 * ldy;
    const int64_t a = t0 == 0 ? ahead : 0;
    switch (mt) {
      case 1: XwQuantChunk<1>(w, type, g0, groups, xt, ldx, xs.get(), yt, ldy, a); break;
      case 2: XwQuantChunk<2>(w, type, g0, groups, xt, ldx, xs.get(), yt, ldy, a); break;
      case 3: XwQuantChunk<3>(w, type, g0, groups, xt, ldx, xs.get(), yt, ldy, a); break;
      default: XwQuantChunk<4>(w, type, g0, groups, xt, ldx, xs.get(), yt, ldy, a); break;
    }
  }
}
#endif  // HWY_TARGET == HWY_AVX3_DL

// Whether TileQuant reads the tiled copy of the activations on this CPU (the VNNI tiles); the portable tiles and AMX
// read the plain layout, so quantize_activations writes the copy only where this is true.
bool UsesTiledActivations() {
#if HWY_TARGET == HWY_AVX3_DL
  return HasVnni();
#else
  return false;
#endif
}

#if HWY_TARGET == HWY_AVX3_DL
// Whether the VNNI tiles have the activations they read for n_tokens tokens: one token reads the plain layout, more
// the tiled copy (written only for m > 1).
inline bool VnniTilesHaveTokens(const QuantizedActivations& xq, int n_tokens) {
  return n_tokens == 1 || !xq.tiled_q.empty();
}
#endif

void TileQuant(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq, int64_t t0, int n_tokens,
               float* y, int64_t ldy) {
#if HWY_TARGET == HWY_AVX3_DL
  if (HasVnni() && t0 % kQuantTileTokens == 0 && VnniTilesHaveTokens(xq, n_tokens)) {
    if (xq.type == QuantType::Q8) return TileTokens<Q8Tile>(w, g, n_rows, xq, t0, n_tokens, y, ldy);
    return TileTokens<Q4Tile>(w, g, n_rows, xq, t0, n_tokens, y, ldy);
  }
#endif
  TileQuantPortable(w, g, n_rows, xq, t0, n_tokens, y, ldy);
}

bool TileQuantPair(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq, int64_t t0,
                   int n_tokens, float* y, int64_t ldy, bool prefetch) {
#if HWY_TARGET == HWY_AVX3_DL
  if (HasVnni() && t0 % kQuantTileTokens + n_tokens <= kQuantTileTokens && VnniTilesHaveTokens(xq, n_tokens)) {
    if (xq.type == QuantType::Q8) {
      switch (n_tokens) {
        case 1: TileQ8Vnni<1, 2>(w, g, n_rows, xq, t0, y, ldy); return true;
        case 2: TileQ8Vnni<2, 2>(w, g, n_rows, xq, t0, y, ldy); return true;
        default: return false;
      }
    }
    // Later passes of 3-4 tokens (the halves of an 8-token tile) without prefetches. The rarer later passes of 1-2 or
    // 5-6 tokens (a last, partial tile) keep the prefetching instances, so that no more instances are compiled.
    if (!prefetch) {
      switch (n_tokens) {
        case 3: TileQ4Vnni<3, 2, false>(w, g, n_rows, xq, t0, y, ldy); return true;
        case 4: TileQ4Vnni<4, 2, false>(w, g, n_rows, xq, t0, y, ldy); return true;
        default: break;
      }
    }
    switch (n_tokens) {
      case 1: TileQ4Vnni<1, 2>(w, g, n_rows, xq, t0, y, ldy); return true;
      case 2: TileQ4Vnni<2, 2>(w, g, n_rows, xq, t0, y, ldy); return true;
      case 3: TileQ4Vnni<3, 2>(w, g, n_rows, xq, t0, y, ldy); return true;
      case 4: TileQ4Vnni<4, 2>(w, g, n_rows, xq, t0, y, ldy); return true;
      case 5: TileQ4Vnni<5, 2>(w, g, n_rows, xq, t0, y, ldy); return true;
      case 6: TileQ4Vnni<6, 2>(w, g, n_rows, xq, t0, y, ldy); return true;
      default: return false;
    }
  }
#endif
  (void)w, (void)g, (void)n_rows, (void)xq, (void)t0, (void)n_tokens, (void)y, (void)ldy, (void)prefetch;
  return false;
}

bool TileQuantQuad(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq, int64_t t0, float* y,
                   int64_t ldy) {
#if HWY_TARGET == HWY_AVX3_DL
  if (HasVnni()) {  // one token: the plain layout (VnniTilesHaveTokens)
    if (xq.type == QuantType::Q8) TileQ8Vnni<1, 4>(w, g, n_rows, xq, t0, y, ldy);
    else TileQ4Vnni<1, 4>(w, g, n_rows, xq, t0, y, ldy);
    return true;
  }
#endif
  (void)w, (void)g, (void)n_rows, (void)xq, (void)t0, (void)y, (void)ldy;
  return false;
}

bool XwQuant(const Weight2D& w, int64_t g0, int64_t groups, const float* x, int64_t ldx, int64_t m, float* y,
             int64_t ldy, int64_t prefetch_g0) {
#if HWY_TARGET == HWY_AVX3_DL
  if (HasVnni()) {
    XwQuantVnni(w, g0, groups, x, ldx, m, y, ldy, prefetch_g0);
    return true;
  }
#endif
  (void)w, (void)g0, (void)groups, (void)x, (void)ldx, (void)m, (void)y, (void)ldy, (void)prefetch_g0;
  return false;
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
HWY_EXPORT(UsesTiledActivations);
HWY_EXPORT(TileQuant);
HWY_EXPORT(TileQuantPair);
HWY_EXPORT(TileQuantQuad);
HWY_EXPORT(XwQuant);
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

void tile_quant(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq, int64_t t0, int n_tokens,
                float* y, int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(TileQuant)(w, g, n_rows, xq, t0, n_tokens, y, ldy);
}

bool tile_quant_quad(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq, int64_t t0, float* y,
                     int64_t ldy) {
  return HWY_DYNAMIC_DISPATCH(TileQuantQuad)(w, g, n_rows, xq, t0, y, ldy);
}

bool tile_quant_pair(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq, int64_t t0,
                     int n_tokens, float* y, int64_t ldy, bool prefetch) {
  return HWY_DYNAMIC_DISPATCH(TileQuantPair)(w, g, n_rows, xq, t0, n_tokens, y, ldy, prefetch);
}

bool xw_quant(const Weight2D& w, int64_t g0, int64_t groups, const float* x, int64_t ldx, int64_t m, float* y,
              int64_t ldy, int64_t prefetch_g0) {
  return HWY_DYNAMIC_DISPATCH(XwQuant)(w, g0, groups, x, ldx, m, y, ldy, prefetch_g0);
}


bool uses_tiled_activations() { return HWY_DYNAMIC_DISPATCH(UsesTiledActivations)(); }

const char* target_name() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

}  // namespace whale::simd
#endif  // HWY_ONCE
