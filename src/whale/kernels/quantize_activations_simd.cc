// Activations rounded to int8 blocks for the q8/q4 products (simd::quantize_activations and its wide form): one
// scale per 32 values and token, codes in the plain layout (AMX, portable tiles) and the token-tiled one (VNNI tiles).
// Compiled once per instruction set by Highway's foreach_target, like matmul_simd.cc.

// AVX3_DL is opt-in in Highway 1.0; CMakeLists.txt enables it for every file, so that all pick the same instruction
// set.
#ifndef HWY_WANT_AVX3_DL
#error "HWY_WANT_AVX3_DL must be defined for every file (CMakeLists.txt): Highway's dispatch index is shared by all"
#endif

#include "whale/kernels/matmul_simd.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "whale/kernels/quantize_activations_simd.cc"
#include <hwy/foreach_target.h>  // NOLINT: re-includes this file once per target
#include <hwy/highway.h>

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#include <immintrin.h>
#endif

HWY_BEFORE_NAMESPACE();
namespace whale::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Block kb of row xr (columns [32·kb, 32·kb + 32) ∩ [0, k)) into its 32 codes q; returns its scale and sets its
// code sum. Scale amax / 127, codes x · (127 / amax) rounded to nearest even and clamped to ±127; an all-zero block
// (or one past k) gets scale 0 and zero codes.
float QuantizeBlock(const float* xr, int64_t kb, int64_t k, int8_t* q, int32_t& sum) {
  const DF df;
  const hn::Rebind<int32_t, DF> di;
  const hn::Rebind<int8_t, DF> d8;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t c0 = kb * kQuantBlock, c1 = std::min(k, c0 + kQuantBlock);
  const bool whole = c1 - c0 == kQuantBlock && kQuantBlock % N == 0;
  float amax = 0.0f;
  int64_t c = c0;
  if (whole) {
    VF m0 = hn::Zero(df);
    for (; c < c1; c += N) m0 = hn::Max(m0, hn::Abs(hn::LoadU(df, xr + c)));
    amax = hn::GetLane(hn::MaxOfLanes(df, m0));
  }
  for (; c < c1; ++c) amax = std::max(amax, std::fabs(xr[c]));
  sum = 0;
  if (amax == 0.0f) {
    std::memset(q, 0, kQuantBlock);
    return 0.0f;
  }
  if (whole) {
    // The same operations as the scalar loop: one f32 product, rounded to nearest even, clamped.
    const VF vinv = hn::Set(df, 127.0f / amax), lo = hn::Set(df, -127.0f), hi = hn::Set(df, 127.0f);
    auto acc = hn::Zero(di);
    for (c = c0; c < c1; c += N) {
      const auto v = hn::NearestInt(hn::Clamp(hn::Mul(hn::LoadU(df, xr + c), vinv), lo, hi));
      acc = hn::Add(acc, v);
      hn::StoreU(hn::DemoteTo(d8, v), d8, q + (c - c0));
    }
    sum = hn::GetLane(hn::SumOfLanes(di, acc));
  } else {
    const float inv = 127.0f / amax;
    std::memset(q, 0, kQuantBlock);
    for (c = c0; c < c1; ++c) {
      const int v = static_cast<int>(std::nearbyint(xr[c] * inv));
      q[c - c0] = static_cast<int8_t>(std::clamp(v, -127, 127));
      sum += q[c - c0];
    }
  }
  return amax / 127.0f;
}

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#ifndef WHALE_AVX512_ATTR
#define WHALE_AVX512_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#endif

// r[i] = op over the 16 lanes of v[i], for 16 vectors at once: pairs of vectors are interleaved and combined at 32,
// 64, 128 and 256 bits, 15 combining steps and 30 shuffles in all instead of 8 dependent steps per vector. `op` is
// exact here (max, or adds of small integers), so the order of combining changes no result.
template <class Op>
WHALE_AVX512_ATTR inline __m512 ReduceEach16(__m512 v[16], Op op) {
  __m512 a[8], b[4], c[2];
  for (int i = 0; i < 8; ++i)  // lanes per 128 bits: v[2i], v[2i+1], v[2i], v[2i+1], each half of them
    a[i] = op(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
  for (int i = 0; i < 4; ++i) {  // per 128 bits: vectors 4i .. 4i+3, a quarter of each
    const __m512d x = _mm512_castps_pd(a[2 * i]), y = _mm512_castps_pd(a[2 * i + 1]);
    b[i] = op(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
  for (int i = 0; i < 2; ++i)  // 128-bit lanes: vectors 8i..8i+3 twice, then 8i+4..8i+7 twice, each half of them
    c[i] = op(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
              _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  return op(_mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
            _mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// Whole blocks [kb0, kb0 + nb) of row xr, nb ≤ 16, as QuantizeBlock gives them (the same operations on each value:
// |x| maxima, amax / 127 and 127 / amax as IEEE divisions, one product, clamp, round to nearest even), 16 blocks'
// maxima, divisions and code sums at a time instead of one block's. Codes go to q (block i at q + 32·i), scales to
// scale[i] and code sums to sum[i].
WHALE_AVX512_ATTR void QuantizeBlocks16(const float* xr, int64_t kb0, int nb, int8_t* q, float* scale,
                                        int32_t* sum) {
  const float* x = xr + kb0 * kQuantBlock;
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  __m512 v[16];
  for (int i = 0; i < 16; ++i)
    v[i] = i < nb ? _mm512_max_ps(_mm512_and_ps(_mm512_loadu_ps(x + 32 * i), abs_mask),
                                  _mm512_and_ps(_mm512_loadu_ps(x + 32 * i + 16), abs_mask))
                  : _mm512_setzero_ps();
  const __m512 amax = ReduceEach16(v, [](__m512 a, __m512 b) { return _mm512_max_ps(a, b); });
  const __m512 v127 = _mm512_set1_ps(127.0f);
  _mm512_storeu_ps(scale, _mm512_div_ps(amax, v127));  // all 16 lanes: scale has room for them (see caller)
  // 127 / amax where amax > 0; 0 elsewhere, so that an all-zero block gets zero codes.
  const __m512 inv = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(amax, _mm512_setzero_ps(), _CMP_NEQ_OQ), v127, amax);
  const __m512 lo = _mm512_set1_ps(-127.0f), hi = v127;
  for (int i = 0; i < 16; ++i) {
    if (i >= nb) {
      v[i] = _mm512_setzero_ps();
      continue;
    }
    const __m512 s = _mm512_permutexvar_ps(_mm512_set1_epi32(i), inv);
    const __m512i c0 = _mm512_cvtps_epi32(
        _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_loadu_ps(x + 32 * i), s), lo), hi));
    const __m512i c1 = _mm512_cvtps_epi32(
        _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_loadu_ps(x + 32 * i + 16), s), lo), hi));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * i), _mm512_cvtsepi32_epi8(c0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * i + 16), _mm512_cvtsepi32_epi8(c1));
    v[i] = _mm512_castsi512_ps(_mm512_add_epi32(c0, c1));
  }
  const __m512 sums = ReduceEach16(v, [](__m512 a, __m512 b) {
    return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(a), _mm512_castps_si512(b)));
  });
  _mm512_storeu_si512(sum, _mm512_castps_si512(sums));
}
#endif

// Rows [t0, t1) of out, whose arrays quantize_activations has sized: tokens below m quantized from x into the plain
// layout and, where out.tiled_q is sized, straight into the tiled one too (no second pass over the codes); the
// padding tokens after m zero in the plain layout (AMX tiles load them; no tile reads the tiled layout past m).
// Every element of those rows is written.
void QuantizeActivations(const float* x, int64_t t0, int64_t t1, int64_t m, int64_t k, int64_t ldx,
                         QuantizedActivations& out) {
  const int64_t blocks = out.blocks, padded_cols = blocks * kQuantBlock;
  const bool tiled = !out.tiled_q.empty();
  const int64_t real_end = std::min(t1, m);
  if (real_end < t1) {
    const int64_t p0 = std::max(t0, real_end);
    std::memset(out.q.data() + p0 * padded_cols, 0, static_cast<size_t>((t1 - p0) * padded_cols));
    std::fill(out.scale.data() + p0 * blocks, out.scale.data() + t1 * blocks, 0.0f);
    std::fill(out.corr.data() + p0 * blocks, out.corr.data() + t1 * blocks, 0);
  }
  const int32_t bias = out.type == QuantType::Q8 ? 128 : 8;
  for (int64_t t = t0; t < real_end; ++t) {
    const float* xr = x + t * ldx;
    int8_t* qr = out.q.data() + t * padded_cols;
    float* sr = out.scale.data() + t * blocks;
    int32_t* cr = out.corr.data() + t * blocks;
    int64_t kb = 0;
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
    // Runs of up to 16 whole blocks; the scales and sums land in 16-lane buffers first (a run may be shorter).
    for (const int64_t whole = k / kQuantBlock; kb < whole; kb += 16) {
      const int nb = static_cast<int>(std::min<int64_t>(16, whole - kb));
      alignas(64) float s16[16];
      alignas(64) int32_t sum16[16];
      QuantizeBlocks16(xr, kb, nb, qr + kb * kQuantBlock, s16, sum16);
      for (int i = 0; i < nb; ++i) sr[kb + i] = s16[i], cr[kb + i] = -bias * sum16[i];
    }
    kb = k / kQuantBlock;
#endif
    for (; kb < blocks; ++kb) {
      int32_t sum = 0;
      sr[kb] = QuantizeBlock(xr, kb, k, qr + kb * kQuantBlock, sum);
      cr[kb] = -bias * sum;
    }
    if (tiled) {
      const int64_t tile = t / kQuantTileTokens, tt = t % kQuantTileTokens;
      for (kb = 0; kb < blocks; ++kb) {
        const int64_t at = (tile * blocks + kb) * kQuantTileTokens + tt;
        std::memcpy(out.tiled_q.data() + at * kQuantBlock, qr + kb * kQuantBlock, kQuantBlock);
        out.tiled_scale[at] = sr[kb];
        out.tiled_corr[at] = cr[kb];
      }
    }
  }
}

// Rows t < m of r (row stride k): x[t] minus what its quantized row t in q stands for, code · scale per column, in f32
// (one product, then one difference, as the scalar expression x − float(q) · s gives them).
void WideResidual(const float* x, int64_t ldx, const QuantizedActivations& q, int64_t m, int64_t k, float* r) {
  const DF df;
  const hn::Rebind<int32_t, DF> di;
  const hn::Rebind<int8_t, DF> d8;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t blocks = q.blocks, pc = blocks * kQuantBlock;
  for (int64_t t = 0; t < m; ++t) {
    const float* xr = x + t * ldx;
    const int8_t* qr = q.q.data() + t * pc;
    const float* sr = q.scale.data() + t * blocks;
    float* rr = r + t * k;
    int64_t c = 0;
    if (kQuantBlock % N == 0)
      for (; c + kQuantBlock <= k; c += kQuantBlock) {
        const VF s = hn::Set(df, sr[c / kQuantBlock]);
        for (int64_t j = c; j < c + kQuantBlock; j += N) {
          const VF code = hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, qr + j)));
          hn::StoreU(hn::Sub(hn::LoadU(df, xr + j), hn::Mul(code, s)), df, rr + j);
        }
      }
    for (; c < k; ++c) rr[c] = xr[c] - static_cast<float>(qr[c]) * sr[c / kQuantBlock];
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace whale::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace whale::simd {

HWY_EXPORT(QuantizeActivations);
HWY_EXPORT(WideResidual);

namespace {

// Split between threads from this many values on (8 tokens of a 2048-wide input: a batched decode step's projections,
// whose quantization on one thread left the others waiting for 4% of the step, perf on a 16-sequence q4 step); below
// it (decode) the fork and join would cost about what the work does.
constexpr int64_t kParallelQuantValues = int64_t{1} << 14;

// Sizes out for m tokens of type t with padded_cols columns; returns its rows (m padded).
int64_t size_quantized(QuantizedActivations& out, int64_t m, QuantType t, int64_t padded_cols) {
  static_assert(kQuantTokenPad % kQuantTileTokens == 0);
  const int64_t blocks = padded_cols / kQuantBlock;
  out.type = t;
  out.m = m;
  out.blocks = blocks;
  const int64_t rows = quantized_rows(m);
  out.q.resize(static_cast<size_t>(rows * padded_cols));
  out.scale.resize(static_cast<size_t>(rows * blocks));
  out.corr.resize(static_cast<size_t>(rows * blocks));
  // The tiled copy, in whole tiles; its rows past m are never read (the VNNI tiles take tokens below m only). One
  // token's tiles read the plain layout, so a lone token (decode) gets no copy: three allocations and a copy of its
  // codes fewer per product input.
  const bool tiled = uses_tiled_activations() && m > 1;
  const int64_t tiles = (rows + kQuantTileTokens - 1) / kQuantTileTokens;
  out.tiled_q.resize(tiled ? static_cast<size_t>(tiles * kQuantTileTokens * padded_cols) : 0);
  out.tiled_scale.resize(tiled ? static_cast<size_t>(tiles * kQuantTileTokens * blocks) : 0);
  out.tiled_corr.resize(out.tiled_scale.size());
  return rows;
}

// Rows [r0, r1) of out from x (row t at x + t·ldx; rows from real_rows on are padding), over the pool when they are
// many values, in whole token tiles.
void quantize_rows(const float* x, int64_t r0, int64_t r1, int64_t real_rows, int64_t k, int64_t ldx,
                   QuantizedActivations& out, ThreadPool* pool) {
  const int64_t pc = out.blocks * kQuantBlock;
  const auto run = [&](int64_t a, int64_t b) {
    HWY_DYNAMIC_DISPATCH(QuantizeActivations)(x, r0 + a * kQuantTileTokens,
                                              std::min(r1, r0 + b * kQuantTileTokens), real_rows, k, ldx, out);
  };
  const int64_t pieces = (r1 - r0 + kQuantTileTokens - 1) / kQuantTileTokens;
  if (pool && (r1 - r0) * pc >= kParallelQuantValues)
    pool->parallel_for(pieces, run, std::max<int64_t>(1, kParallelQuantValues / 2 / (kQuantTileTokens * pc)));
  else
    run(0, pieces);
}

}  // namespace

void quantize_activations(const float* x, int64_t m, int64_t k, int64_t ldx, QuantType t, int64_t padded_cols,
                          QuantizedActivations& out, ThreadPool* pool) {
  const int64_t rows = size_quantized(out, m, t, padded_cols);
  quantize_rows(x, 0, rows, m, k, ldx, out, pool);
}

void quantize_activations_wide(const float* x, int64_t m, int64_t k, int64_t ldx, QuantType t, int64_t padded_cols,
                               QuantizedActivations& out, ThreadPool* pool) {
  const int64_t rows = size_quantized(out, 2 * m, t, padded_cols);
  // Rows [0, m): x as any activation is rounded. Rows [m, 2m): what that left, from a buffer whose row m + t is
  // token t's remainder (its first m rows are never read).
  quantize_rows(x, 0, m, 2 * m, k, ldx, out, pool);
  UninitVector<float> left(static_cast<size_t>(2 * m * k));  // rows [m, 2m) written in full below
  HWY_DYNAMIC_DISPATCH(WideResidual)(x, ldx, out, m, k, left.data() + m * k);
  quantize_rows(left.data(), m, rows, 2 * m, k, k, out, pool);
}

}  // namespace whale::simd
#endif  // HWY_ONCE
