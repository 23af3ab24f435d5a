// x·W for q8/q4 weights: y[t, c] += Σ_i x[t, i] · W[i, c], the weight read in place in its quantized layout (absorbed
// attention's W_UK, whose rows are the latent's). On AVX-512 with VNNI (Highway's AVX3_DL target) only; elsewhere the
// caller decodes rows to f32 instead. Compiled once per instruction set by Highway's foreach_target.

// AVX3_DL (VNNI, VBMI2, ...) is opt-in in Highway 1.0; CMakeLists.txt enables it for every file.
#ifndef HWY_WANT_AVX3_DL
#error "HWY_WANT_AVX3_DL must be defined for every file (CMakeLists.txt): Highway's dispatch index is shared by all"
#endif

#include "whale/kernels/matmul_simd.h"

#include <algorithm>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "whale/kernels/matmul_simd_xw.cc"
#include <hwy/foreach_target.h>  // NOLINT: re-includes this file once per target
#include <hwy/highway.h>
#include <hwy/aligned_allocator.h>

#include "whale/kernels/matmul_simd_vnni-inl.h"

HWY_BEFORE_NAMESPACE();
namespace whale::simd {
namespace HWY_NAMESPACE {

#if HWY_TARGET == HWY_AVX3_DL
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

}  // namespace HWY_NAMESPACE
}  // namespace whale::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace whale::simd {

HWY_EXPORT(XwQuant);

bool xw_quant(const Weight2D& w, int64_t g0, int64_t groups, const float* x, int64_t ldx, int64_t m, float* y,
              int64_t ldy, int64_t prefetch_g0) {
  return HWY_DYNAMIC_DISPATCH(XwQuant)(w, g0, groups, x, ldx, m, y, ldy, prefetch_g0);
}

}  // namespace whale::simd
#endif  // HWY_ONCE
