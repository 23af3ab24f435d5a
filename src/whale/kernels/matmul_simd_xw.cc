// x·W for q8/q4 weights: y[t, c] += Σ_i x[t, i] · W[i, c], the weight read in place in its quantized layout (absorbed
// attention's W_UK, whose rows are the latent's). On AVX-512 with VNNI (Highway's AVX3_DL target) only; elsewhere the
// caller decodes rows to f32 instead. Compiled once per instruction set by Highway's foreach_target.

// AVX3_DL (VNNI, VBMI2, ...) is opt-in in Highway 1.0; CMakeLists.txt enables it for every file.
#ifndef HWY_WANT_AVX3_DL
#error "HWY_WANT_AVX3_DL must be defined for every file (CMakeLists.txt): Highway's dispatch index is shared by all"
#endif

#include "whale/kernels/matmul_simd.h"

#include <algorithm>
#include <cmath>
#include <cstring>

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
// x·W over rows [16·g0, 16·g0 + 16·groups) of a q8/q4 weight, one token: y[c] += Σ_i x[i] · W[16·g0 + i, c], the
// products in integers (vpdpbusd), as the "x·W" section of docs/quantization.md describes. Per 32-column block kb,
// the rows' values a_i = x_i · s_ik (s_ik the block's f16 scale of row i) are rounded twice to int8 with one step
// d = max|a| / 127: α_i = round(a_i / d), then what that left, β_i = round((a_i − α_i·d) · 256 / d), saturated to
// [−128, 127], so that a_i ≈ d·(α_i + β_i / 256) to about 16 bits (as the mix entering W_UV,
// matmul_serial_wide_activations). Then y[c] += (d / 256) · Σ_i q_ic · (256·α_i + β_i), the sum exact in int32.
// One head's W_UK in cache (matmul_bench AbsorbedHeadXw, one token, Zen 5 VM, fastest of 12): q8 1.31 µs against
// 3.05 with every code widened to f32, q4 1.31 against 1.93; 16 tokens q8 17.4 against 24.0 µs, q4 level.
//
// Within a line (columns 4l..4l+3 of the group's 16 rows, 4 bytes per row) each 16-byte quarter holds 4 rows ×
// 4 columns; one vpshufb turns each quarter to 4 columns × 4 rows, so that a vpdpbusd against the quarter's 4 α bytes
// (broadcast to its 4 lanes) adds one column's 4 rows per lane. The codes are biased (q8 q + 128, q4 q + 8, the
// high nibbles masked in place, 16·(q + 8)): bias·Σ_i (256·α_i + β_i) comes off each column once per block. About 5
// instructions per q8 line (8 per q4 line) against 20 (28) when each code was widened to f32 and multiplied there.
//
// Runs of at most kXwRunGroups groups, each with its own steps d, keep every int32 sum in range: a column's biased
// sum over 128 rows is at most 128·255·(256·127 + 128), about 2^30.
constexpr int64_t kXwRunGroups = 8;

// Each line read prefetches the same line of its group this many blocks on (one superblock), into L1; in the last
// blocks, the first blocks of the rows `ahead` groups on (the caller's next rows). Scale lines likewise, one per
// superblock. Prefetching the whole next call's rows a line per line read, into L2, instead: absorbed attention's q8
// W_UK 49-63 µs per layer and thread (8 heads) against 38-42 (Zen 5 VM, session 37; q4 level).
constexpr int64_t kXwPrefetchBlocks = kQuantSuperBlocks;

// vpshufb indices of the in-quarter transpose: destination byte 4c + r takes source byte 4r + c.
WHALE_VNNI_ATTR inline __m512i QuarterTransposeIndices() {
  return _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15));
}

// One token over groups [g0, g0 + groups), groups ≤ kXwRunGroups; x holds 16·groups values (zero past the weight's
// rows); as: scratch of 16·groups floats, 64-byte aligned.
template <QuantType kType>
WHALE_VNNI_ATTR void XwQuantRun(const Weight2D& w, int64_t g0, int64_t groups, const float* x, float* y, int64_t ahead,
                                float* as) {
  constexpr int kLines = kType == QuantType::Q8 ? 8 : 4;
  constexpr int kAcc = 8;  // q8: a line each; q4: the low nibbles of a line each, then the high
  const int64_t blocks = quant_padded_cols(w.cols) / kQuantBlock;
  const int64_t group_bytes = quant_group_bytes(kType, blocks * kQuantBlock);
  const uint8_t* const w0 = w.data + g0 * group_bytes;
  const __m512i transpose = QuarterTransposeIndices();
  const __m512i quarter_of_lane = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  const __m512i low_nibbles = _mm512_set1_epi8(0x0F),
                high_nibbles = _mm512_set1_epi8(static_cast<char>(0xF0));
  const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);  // clears a float's sign
  const auto block_at = [&](int64_t kb, bool scales) {
    return scales ? quant_scales_in_group(kType, kb) : quant_block_in_group(kType, kb);
  };
  for (int64_t kb = 0; kb < blocks; ++kb) {
    // Block kb's codes (and scales) kXwPrefetchBlocks on, or in the last blocks those of the rows `ahead` groups on,
    // as an offset from block kb's own (0: no prefetch).
    const bool within = kb + kXwPrefetchBlocks < blocks;
    const auto skip_to = [&](bool scales) -> int64_t {
      if (within) return block_at(kb + kXwPrefetchBlocks, scales) - block_at(kb, scales);
      if (ahead == 0) return 0;
      return ahead * group_bytes + block_at(kb + kXwPrefetchBlocks - blocks, scales) - block_at(kb, scales);
    };
    const int64_t skip = skip_to(false), scale_skip = kb % kQuantSuperBlocks == 0 ? skip_to(true) : 0;
    // max|a| as the largest bit pattern of the magnitudes (their integer order is their order as floats), which
    // also finds a NaN or infinity (patterns from 0x7F800000 up) without a compare per group.
    __m512i amax = _mm512_setzero_si512();
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t* sp = w0 + g * group_bytes + quant_scales_in_group(kType, kb);
      if (scale_skip != 0) _mm_prefetch(reinterpret_cast<const char*>(sp + scale_skip), _MM_HINT_T0);
      const __m512 a = _mm512_mul_ps(_mm512_loadu_ps(x + g * kQuantRowGroup), GroupBlockScales(sp));
      _mm512_store_ps(as + g * kQuantRowGroup, a);
      amax = _mm512_max_epi32(amax, _mm512_and_si512(_mm512_castps_si512(a), magnitude));
    }
    const int32_t max_bits = _mm512_reduce_max_epi32(amax);
    const int64_t c0 = kb * kQuantBlock;
    if (max_bits >= 0x7F800000) {  // a NaN or infinite x·s: the block's columns NaN, as float products would make them
      for (int64_t c = c0; c < std::min(c0 + kQuantBlock, w.cols); ++c) y[c] += NAN;
      continue;
    }
    if (max_bits == 0) continue;  // an all-zero block adds nothing
    float m;
    std::memcpy(&m, &max_bits, sizeof m);
    const float d = m / 127.0f, inv = 127.0f / m;
    const __m512 dv = _mm512_set1_ps(d), inv1 = _mm512_set1_ps(inv), inv2 = _mm512_set1_ps(inv * 256.0f);
    __m512i alpha_acc[kAcc], beta_acc[kAcc];  // Σ code·α and Σ code·β, per line (q4: low nibbles, then high)
    for (int i = 0; i < kAcc; ++i) alpha_acc[i] = beta_acc[i] = _mm512_setzero_si512();
    __m512i weighted_sum = _mm512_setzero_si512();  // Σ_g 256·α + β, per row of a group
    for (int64_t g = 0; g < groups; ++g) {
      const __m512 a = _mm512_load_ps(as + g * kQuantRowGroup);
      const __m512i alpha = _mm512_cvtps_epi32(_mm512_mul_ps(a, inv1));
      const __m512 rest = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(alpha), dv, a);
      // |rest| ≤ d/2 makes β at most 128 in size; +128 saturates to 127 (the sums below count what the bytes hold).
      const __m512i beta = _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(rest, inv2)), _mm512_set1_epi32(127));
      const __m512i av = _mm512_permutexvar_epi32(quarter_of_lane, _mm512_castsi128_si512(_mm512_cvtepi32_epi8(alpha)));
      const __m512i bv = _mm512_permutexvar_epi32(quarter_of_lane, _mm512_castsi128_si512(_mm512_cvtepi32_epi8(beta)));
      weighted_sum = _mm512_add_epi32(weighted_sum, _mm512_add_epi32(_mm512_slli_epi32(alpha, 8), beta));
      const uint8_t* const block = w0 + g * group_bytes + quant_block_in_group(kType, kb);
#pragma GCC unroll 8
      for (int l = 0; l < kLines; ++l) {
        if (skip != 0) _mm_prefetch(reinterpret_cast<const char*>(block + 64 * l + skip), _MM_HINT_T0);
        const __m512i v = _mm512_shuffle_epi8(_mm512_loadu_si512(block + 64 * l), transpose);
        if constexpr (kType == QuantType::Q8) {
          alpha_acc[l] = _mm512_dpbusd_epi32(alpha_acc[l], v, av);
          beta_acc[l] = _mm512_dpbusd_epi32(beta_acc[l], v, bv);
        } else {
          const __m512i lo = _mm512_and_si512(v, low_nibbles), hi = _mm512_and_si512(v, high_nibbles);
          alpha_acc[l] = _mm512_dpbusd_epi32(alpha_acc[l], lo, av);
          beta_acc[l] = _mm512_dpbusd_epi32(beta_acc[l], lo, bv);
          alpha_acc[4 + l] = _mm512_dpbusd_epi32(alpha_acc[4 + l], hi, av);
          beta_acc[4 + l] = _mm512_dpbusd_epi32(beta_acc[4 + l], hi, bv);
        }
      }
    }
    // Each accumulator's lanes (quarter k, column c) summed over k, four accumulators into one vector of 16 columns
    // (q8 lines 0-3, then 4-7; q4 the low nibbles' columns 0-15, then the high ones' 16-31), in integers; then the
    // bias off, one rounding to float and one fused multiply-add into y.
    const int32_t weighted = _mm512_reduce_add_epi32(weighted_sum);
    const float step = d * (1.0f / 256.0f);
    for (int half = 0; half < 2; ++half) {
      __m512i v[4];
      for (int j = 0; j < 4; ++j)
        v[j] = _mm512_add_epi32(_mm512_slli_epi32(alpha_acc[4 * half + j], 8), beta_acc[4 * half + j]);
      // 128-bit lanes: [v0 q0+q2, v0 q1+q3, v1 q0+q2, v1 q1+q3], likewise v2, v3; then each vector's pair added.
      const auto halves = [](__m512i a, __m512i b) WHALE_VNNI_ATTR {
        return _mm512_add_epi32(_mm512_shuffle_i64x2(a, b, 0x44), _mm512_shuffle_i64x2(a, b, 0xEE));
      };
      const __m512i s01 = halves(v[0], v[1]), s23 = halves(v[2], v[3]);
      __m512i cols = _mm512_add_epi32(_mm512_shuffle_i64x2(s01, s23, 0x88), _mm512_shuffle_i64x2(s01, s23, 0xDD));
      const bool high = kType == QuantType::Q4 && half == 1;
      cols = _mm512_sub_epi32(cols, _mm512_set1_epi32((kType == QuantType::Q4 && !high ? 8 : 128) * weighted));
      if (high) cols = _mm512_srai_epi32(cols, 4);  // 16·Σ q·(256α + β): exact
      const int64_t c = c0 + 16 * half;
      const __m512 sum = _mm512_cvtepi32_ps(cols);
      if (c + 16 <= w.cols) {
        _mm512_storeu_ps(y + c, _mm512_fmadd_ps(sum, _mm512_set1_ps(step), _mm512_loadu_ps(y + c)));
      } else if (c < w.cols) {
        const __mmask16 keep = static_cast<__mmask16>((1u << (w.cols - c)) - 1);
        _mm512_mask_storeu_ps(y + c, keep,
                              _mm512_fmadd_ps(sum, _mm512_set1_ps(step), _mm512_maskz_loadu_ps(keep, y + c)));
      }
    }
  }
}

WHALE_VNNI_ATTR void XwQuantVnni(const Weight2D& w, int64_t g0, int64_t groups, const float* x, int64_t ldx,
                                 int64_t m, float* y, int64_t ldy, int64_t prefetch_g0) {
  const QuantType type = w.dtype == DType::Q8 ? QuantType::Q8 : QuantType::Q4;
  auto as = hwy::AllocateAligned<float>(static_cast<size_t>(std::min(groups, kXwRunGroups) * kQuantRowGroup));
  for (int64_t t = 0; t < m; ++t)
    for (int64_t r0 = 0; r0 < groups; r0 += kXwRunGroups) {
      const int64_t n = std::min(kXwRunGroups, groups - r0);
      // The last blocks prefetch the next run's rows, or after the last run (of the first token) the caller's next.
      const int64_t ahead = r0 + n < groups ? n : t == 0 && prefetch_g0 >= 0 ? prefetch_g0 - (g0 + r0) : 0;
      const float* xt = x + t * ldx + r0 * kQuantRowGroup;
      if (type == QuantType::Q8) XwQuantRun<QuantType::Q8>(w, g0 + r0, n, xt, y + t * ldy, ahead, as.get());
      else XwQuantRun<QuantType::Q4>(w, g0 + r0, n, xt, y + t * ldy, ahead, as.get());
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
