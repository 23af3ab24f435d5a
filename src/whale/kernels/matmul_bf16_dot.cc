#include "whale/kernels/matmul_bf16_dot.h"

#include <algorithm>
#include <cstring>

#include "whale/core/cache_line.h"
#include "whale/core/dtype.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define WHALE_HAVE_BF16_DOT 1
#endif

namespace whale::bf16dot {

namespace {

// Weight rows held in L2 while every token sweeps them (each 6-token tile read from L1). Every CPU with the bf16 dot
// instruction has 1 MB of L2 or more per core. Each 6-token group's activations come into L1 once per panel, so a
// longer panel reloads them less often: 384 KB against 192, BF16 prefill 512 paired 1.039x (5 rounds of 3, Zen 5).
constexpr int64_t kPanelBytes = 384 * 1024;
// Values to round before a pool is worth waking.
constexpr int64_t kParallelValues = 1 << 16;

// The halving tree over 16 lane sums, in the order the SIMD reduction adds them.
float reduce_lanes(const float lanes[16]) {
  float s8[8], s4[4], s2[2];
  for (int i = 0; i < 8; ++i) s8[i] = lanes[i] + lanes[i + 8];
  for (int i = 0; i < 4; ++i) s4[i] = s8[i] + s8[i + 4];
  for (int i = 0; i < 2; ++i) s2[i] = s4[i] + s4[i + 2];
  return s2[0] + s2[1];
}

#if WHALE_HAVE_BF16_DOT

#define WHALE_BF16_ATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

// GCC 12 writes the unmasked forms of these intrinsics with _mm512_undefined_*() as their merge source, which
// -W(maybe-)uninitialized reports once they are inlined into a function with a target attribute (a false positive:
// every lane is written). The zero-masking forms with every lane selected compile to the same instructions and have no
// undefined source, so no pragma has to silence the warning (which would also hide a real uninitialised read here).
template <int imm>
WHALE_BF16_ATTR inline __m512 shuffle_f32x4(__m512 a, __m512 b) {
  return _mm512_maskz_shuffle_f32x4(0xFFFF, a, b, imm);
}
WHALE_BF16_ATTR inline __m512 permute_lanes(__m512i index, __m512 v) {
  return _mm512_maskz_permutexvar_ps(0xFFFF, index, v);
}
template <int imm>
WHALE_BF16_ATTR inline __m128 quarter(__m512 v) {
  return _mm512_maskz_extractf32x4_ps(0xF, v, imm);
}
WHALE_BF16_ATTR inline __m512i shift_right(__m512i v, unsigned bits) {
  return _mm512_maskz_srli_epi32(0xFFFF, v, bits);
}
WHALE_BF16_ATTR inline __m256i narrow_to_16(__m512i v) { return _mm512_maskz_cvtepi32_epi16(0xFFFF, v); }

bool detect() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(1, 0, &a, &b, &c, &d) || !(c & (1u << 27))) return false;  // OSXSAVE
  unsigned lo, hi;
  __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 0xE6u) != 0xE6u) return false;  // the OS saves SSE, AVX and the three AVX-512 state components
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool avx512 = (b & (1u << 16)) && (b & (1u << 30)) && (b & (1u << 17)) && (b & (1u << 31));  // F BW DQ VL
  if (!avx512 || a < 1) return false;
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
  return a & (1u << 5);  // AVX512_BF16
}

// v[i] -> one vector whose lane 4·(i % 4) + i / 4 is reduce_lanes(v[i]): four levels of the halving tree, each
// adding the two halves of pairs of vectors at once (256-bit halves, then 128-bit quarters, then within quarters).
WHALE_BF16_ATTR inline __m512 reduce16(const __m512* v) {
  __m512 c[8], e[4], g[2];
  for (int i = 0; i < 8; ++i)
    c[i] = _mm512_add_ps(shuffle_f32x4<0x44>(v[2 * i], v[2 * i + 1]),
                         shuffle_f32x4<0xEE>(v[2 * i], v[2 * i + 1]));
  for (int i = 0; i < 4; ++i)
    e[i] = _mm512_add_ps(shuffle_f32x4<0x88>(c[2 * i], c[2 * i + 1]),
                         shuffle_f32x4<0xDD>(c[2 * i], c[2 * i + 1]));
  for (int i = 0; i < 2; ++i)
    g[i] = _mm512_add_ps(_mm512_shuffle_ps(e[2 * i], e[2 * i + 1], 0x44),
                         _mm512_shuffle_ps(e[2 * i], e[2 * i + 1], 0xEE));
  return _mm512_add_ps(_mm512_shuffle_ps(g[0], g[1], 0x88), _mm512_shuffle_ps(g[0], g[1], 0xDD));
}

// v[i], i < 8 -> lanes 4·(i % 2) + i / 2 of one vector hold reduce_lanes(v[i]) (lanes 8-15: don't care): the same
// four levels as reduce16, each lane's additions the same pairs in the same order (the same bits), but on 8 vectors
// in 8 additions and 17 shuffles instead of reduce16's 15 and 30 with 8 vectors of zeros.
WHALE_BF16_ATTR inline __m512 reduce8(const __m512* v) {
  __m512 c[4], e[2];
  for (int i = 0; i < 4; ++i)  // c[i]: v[2i] ‖ v[2i + 1], each 8 lanes (lane j + lane j + 8)
    c[i] = _mm512_add_ps(shuffle_f32x4<0x44>(v[2 * i], v[2 * i + 1]),
                         shuffle_f32x4<0xEE>(v[2 * i], v[2 * i + 1]));
  for (int i = 0; i < 2; ++i)  // e[i]: v[4i] .. v[4i + 3], 4 lanes each (j + j + 4)
    e[i] = _mm512_add_ps(shuffle_f32x4<0x88>(c[2 * i], c[2 * i + 1]),
                         shuffle_f32x4<0xDD>(c[2 * i], c[2 * i + 1]));
  // Quarter q: v[q] and v[4 + q], 2 lanes each (j + j + 2); then 1 lane each (j + j + 1), twice over.
  const __m512 g = _mm512_add_ps(_mm512_shuffle_ps(e[0], e[1], 0x44), _mm512_shuffle_ps(e[0], e[1], 0xEE));
  const __m512 f = _mm512_add_ps(_mm512_shuffle_ps(g, g, 0x88), _mm512_shuffle_ps(g, g, 0xDD));
  // f's lane 4q + p holds v[q + 4p] (p < 2); v[i] goes to lane 4·(i % 2) + i / 2, from lane 4·(i % 4) + i / 4.
  const __m512i to = _mm512_setr_epi32(0, 8, 1, 9, 4, 12, 5, 13, 0, 0, 0, 0, 0, 0, 0, 0);
  return permute_lanes(to, f);
}

WHALE_BF16_ATTR inline __m512bh load_bh(const uint16_t* p) { return (__m512bh)_mm512_loadu_si512(p); }

// W rows w[0..3] · tokens x[0..5]: lo gets tokens 0-3 in lanes 4t + r, hi tokens 4-5 in lanes 4(t - 4) + r (lanes
// 8-15 of hi hold nothing). Pointers may repeat: a tail tile reuses a valid row or token, whose duplicate results the
// caller drops. Accumulator 4r + t of a group holds (row r, its token t), which reduce16 puts in lane 4t + r: each
// token's 4 rows side by side, stored to y with one 128-bit store. 24 accumulators: the 4 × 6 tile loads 10 vectors
// per 24 dot instructions where 4 × 4 loads 8 per 16.
struct Tile {
  __m512 lo, hi;
};
WHALE_BF16_ATTR Tile tile4x6(const uint16_t* const* w, const uint16_t* const* x, int64_t k) {
  __m512 acc[24];
#pragma GCC unroll 24
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t c = 0; c < k; c += 32) {
    __m512bh a[4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) a[r] = load_bh(w[r] + c);
#pragma GCC unroll 6
    for (int t = 0; t < 6; ++t) {
      const __m512bh b = load_bh(x[t] + c);
      const int base = t < 4 ? t : 16 + (t - 4);  // group lo: 4r + t; group hi: 16 + 2r + (t - 4)
      const int stride = t < 4 ? 4 : 2;
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r) acc[base + stride * r] = _mm512_dpbf16_ps(acc[base + stride * r], a[r], b);
    }
  }
  // Group hi, (row r, token 4 + t) at acc[16 + 2r + t], i = 2r + t: reduce8 puts it in lane 4t + r, as store_group
  // reads it.
  return {reduce16(acc), reduce8(acc + 16)};
}

// Stores a reduced group: tokens [0, nt) of lanes 4t + r, rows [0, nr), to yt[t·ldy + r].
WHALE_BF16_ATTR inline void store_group(__m512 v, int nt, int nr, float* yt, int64_t ldy) {
  if (nr == 4) {
    _mm_storeu_ps(yt, quarter<0>(v));
    if (nt > 1) _mm_storeu_ps(yt + ldy, quarter<1>(v));
    if (nt > 2) _mm_storeu_ps(yt + 2 * ldy, quarter<2>(v));
    if (nt > 3) _mm_storeu_ps(yt + 3 * ldy, quarter<3>(v));
    return;
  }
  alignas(64) float out[16];
  _mm512_store_ps(out, v);
  for (int t = 0; t < nt; ++t)
    for (int r = 0; r < nr; ++r) yt[t * ldy + r] = out[4 * t + r];
}

// Decode and small batches: W rows w[0..R) · tokens x[0..T), T ≤ kStreamTokens, the weights streamed from memory
// once. R rows are R streams in flight, each prefetched kStreamPrefetchBytes ahead and, near its end, into the same row
// of the next tile (R rows on), which this thread usually reads next. Loads may straddle lines (no aligned copy: each
// weight is read once). Accumulator r·T + t holds (row r, token t), the arithmetic of tile4x6's. R·T ≤ 24
// accumulators: 8 rows for up to 3 tokens, 6 for 4, 4 for 5 and 6 (streams in flight traded for tokens, since every
// row's line feeds T dot instructions).
constexpr int64_t kStreamPrefetchBytes = 2048;
template <int T>
constexpr int kStreamRows = T <= 3 ? 8 : T == 4 ? 6 : 4;

// A streaming tile's results, rows [0, nr) of every token, to y[t·ldy + r]: accumulators 0-15 through reduce16 (to
// lane 4·(i % 4) + i / 4), 16-23 through reduce8 (lane 16 + 4·(j % 2) + j / 2, j = i − 16); a tile of 8 or fewer
// through reduce8 alone. Unused accumulators are zero.
template <int R, int T>
WHALE_BF16_ATTR inline void store_stream_tile(const __m512* acc, int nr, float* y, int64_t ldy) {
  constexpr int n = R * T;
  alignas(64) float out[32];
  if constexpr (n <= 8) {
    _mm512_store_ps(out, reduce8(acc));
  } else {
    _mm512_store_ps(out, reduce16(acc));
    if constexpr (n > 16) _mm512_store_ps(out + 16, reduce8(acc + 16));
  }
  for (int r = 0; r < nr; ++r)
    for (int t = 0; t < T; ++t) {
      const int i = r * T + t;
      const int j = i - 16;
      const int lane = n <= 8 ? 4 * (i % 2) + i / 2 : i < 16 ? 4 * (i % 4) + i / 4 : 16 + 4 * (j % 2) + j / 2;
      y[t * ldy + r] = out[lane];
    }
}

template <int R, int T>
WHALE_BF16_ATTR void stream_tile(const uint16_t* const* w, const uint16_t* const* x, int64_t k, int nr, float* y,
                                 int64_t ldy) {
  __m512 acc[24];
#pragma GCC unroll 24
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_setzero_ps();
  const int64_t row_bytes = 2 * k;
  for (int64_t c = 0; c < k; c += 32) {
    int64_t ahead = 2 * c + kStreamPrefetchBytes;
    if (ahead >= row_bytes) ahead += (R - 1) * row_bytes;
    __m512bh b[T];
#pragma GCC unroll 6
    for (int t = 0; t < T; ++t) b[t] = load_bh(x[t] + c);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(w[r]) + ahead, _MM_HINT_T0);
      const __m512bh a = load_bh(w[r] + c);
#pragma GCC unroll 6
      for (int t = 0; t < T; ++t) acc[r * T + t] = _mm512_dpbf16_ps(acc[r * T + t], a, b[t]);
    }
  }
  store_stream_tile<R, T>(acc, nr, y, ldy);
}

// stream_tile for R whole rows in a row (w, w + k, ..., w + (R − 1)k), which is every tile but a matrix's last, and
// tokens in a row (x, x + k, ..., as RoundedActivations holds them): the same accumulators, prefetches and results.
// Rows and tokens are addressed as pointers (rows 0, 3 and 6; tokens 0 and 3) plus 0, 1 or 2 strides (both are k
// values long), so that a step's loads and prefetches take a few registers and fixed offsets. Handed 8 row pointers,
// GCC kept most of them and the prefetch distance on the stack and reloaded them every step (about 40 instructions
// per 8 lines instead of 27); the tile streamed 10% slower (one-token BF16 products over 1.5 GB at 2 threads, Zen 5).
// Not inlined: inside its caller GCC ran short of registers and reloaded the far prefetch's offset from the stack every
// step (36 instructions per 8 lines instead of 32, one token).
template <int R, int T>
WHALE_BF16_ATTR __attribute__((noinline)) void stream_rows(const uint16_t* w, const uint16_t* x, int64_t k, float* y,
                                                           int64_t ldy) {
  __m512 acc[24];
#pragma GCC unroll 24
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_setzero_ps();
  const int64_t s = 2 * k;  // row stride in bytes, of the weights and of the tokens
  const auto step = [&](const char* p0, const char* p3, const char* p6, const char* x0, const char* x3,
                        int64_t far) WHALE_BF16_ATTR {
    const char* tokens[6] = {x0, x0 + s, x0 + 2 * s, x3, x3 + s, x3 + 2 * s};
    __m512bh b[T];
#pragma GCC unroll 6
    for (int t = 0; t < T; ++t) b[t] = (__m512bh)_mm512_loadu_si512(tokens[t]);
    const char* rows[8] = {p0, p0 + s, p0 + 2 * s, p3, p3 + s, p3 + 2 * s, p6, p6 + s};
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      _mm_prefetch(rows[r] + far, _MM_HINT_T0);
      const __m512bh a = (__m512bh)_mm512_loadu_si512(rows[r]);
#pragma GCC unroll 6
      for (int t = 0; t < T; ++t) acc[r * T + t] = _mm512_dpbf16_ps(acc[r * T + t], a, b[t]);
    }
  };
  const char* p0 = reinterpret_cast<const char*>(w);
  const char *p3 = p0 + 3 * s, *p6 = p0 + 6 * s;
  const char* x0 = reinterpret_cast<const char*>(x);
  const char* x3 = x0 + 3 * s;
  // Prefetches kStreamPrefetchBytes ahead in the row until that passes its end, then as far into the same row of the
  // next tile (R − 1 rows further on): two loops, each with one distance.
  const int64_t near_end = std::min(k, std::max<int64_t>(0, (s - kStreamPrefetchBytes + 63) / 64 * 32));
  int64_t c = 0;
  for (; c < near_end; c += 32, p0 += 64, p3 += 64, p6 += 64, x0 += 64, x3 += 64)
    step(p0, p3, p6, x0, x3, kStreamPrefetchBytes);
  const int64_t far = (R - 1) * s + kStreamPrefetchBytes;
  for (; c < k; c += 32, p0 += 64, p3 += 64, p6 += 64, x0 += 64, x3 += 64) step(p0, p3, p6, x0, x3, far);
  store_stream_tile<R, T>(acc, R, y, ldy);
}

template <int T>
WHALE_BF16_ATTR void run_stream_tokens(const Weight2D& w, int64_t r0, int64_t r1, const RoundedActivations& xb,
                                       float* y, int64_t ldy) {
  constexpr int R = kStreamRows<T>;
  const int64_t k = w.cols;
  const auto* wd = reinterpret_cast<const uint16_t*>(w.data);
  const uint16_t* xt[T];
  for (int t = 0; t < T; ++t) xt[t] = xb.data() + t * k;
  for (int64_t rr = r0; rr < r1; rr += R) {
    const int nr = static_cast<int>(std::min<int64_t>(R, r1 - rr));
    // A whole tile reads its rows from its first on (stream_rows), the last, partial one through row pointers.
    if (nr == R) {
      stream_rows<R, T>(wd + rr * k, xb.data(), k, y + (rr - r0), ldy);
      continue;
    }
    const uint16_t* wr[R];
    for (int r = 0; r < R; ++r) wr[r] = wd + (rr + std::min(r, nr - 1)) * k;
    stream_tile<R, T>(wr, xt, k, nr, y + (rr - r0), ldy);
  }
}

WHALE_BF16_ATTR void run_stream(const Weight2D& w, int64_t r0, int64_t r1, const RoundedActivations& xb, float* y,
                                int64_t ldy) {
  static_assert(kStreamTokens == 6);
  switch (xb.m) {
    case 1: return run_stream_tokens<1>(w, r0, r1, xb, y, ldy);
    case 2: return run_stream_tokens<2>(w, r0, r1, xb, y, ldy);
    case 3: return run_stream_tokens<3>(w, r0, r1, xb, y, ldy);
    case 4: return run_stream_tokens<4>(w, r0, r1, xb, y, ldy);
    case 5: return run_stream_tokens<5>(w, r0, r1, xb, y, ldy);
    default: return run_stream_tokens<6>(w, r0, r1, xb, y, ldy);
  }
}

WHALE_BF16_ATTR void run(const Weight2D& w, int64_t r0, int64_t r1, const RoundedActivations& xb, float* y,
                         int64_t ldy, std::vector<uint16_t>& scratch) {
  const int64_t k = w.cols, m = xb.m;
  if (m <= kStreamTokens) return run_stream(w, r0, r1, xb, y, ldy);
  const int64_t panel = panel_rows(k);
  // Rows off a 64-byte boundary go through an aligned copy: a straddling load costs two of L1's.
  const bool copy = reinterpret_cast<uintptr_t>(w.data) % 64 != 0;
  uint16_t* aligned = nullptr;
  if (copy) {
    const size_t need = static_cast<size_t>(std::min(panel, r1 - r0) * k) + kCacheLine / sizeof(uint16_t);
    if (scratch.size() < need) scratch.resize(need);
    aligned = align_to_cache_line(scratch.data());
  }
  for (int64_t p0 = r0; p0 < r1; p0 += panel) {
    const int64_t p1 = std::min(r1, p0 + panel);
    const uint16_t* wd = reinterpret_cast<const uint16_t*>(w.data) + p0 * k;  // the panel, from row p0
    if (copy) {
      std::memcpy(aligned, wd, static_cast<size_t>((p1 - p0) * k) * 2);
      wd = aligned;
    }
    for (int64_t t0 = 0; t0 < m; t0 += 6) {
      const int nt = static_cast<int>(std::min<int64_t>(6, m - t0));
      const uint16_t* xt[6];
      for (int t = 0; t < 6; ++t) xt[t] = xb.data() + (t0 + std::min(t, nt - 1)) * k;
      for (int64_t rr = p0; rr < p1; rr += 4) {
        const int nr = static_cast<int>(std::min<int64_t>(4, p1 - rr));
        const uint16_t* wr[4];
        for (int r = 0; r < 4; ++r) wr[r] = wd + (rr - p0 + std::min(r, nr - 1)) * k;
        const Tile v = tile4x6(wr, xt, k);
        float* yt = y + t0 * ldy + (rr - r0);
        store_group(v.lo, std::min(nt, 4), nr, yt, ldy);
        if (nt > 4) store_group(v.hi, nt - 4, nr, yt + 4 * ldy, ldy);
      }
    }
  }
}

// Rounds with integer arithmetic, as f32_to_bf16 does (bits + 0x7FFF + lsb, NaN made quiet).
WHALE_BF16_ATTR void round_rows_avx512(const float* x, int64_t t0, int64_t t1, int64_t k, int64_t ldx,
                                       uint16_t* out) {
  const __m512i lsb_mask = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7FFF);
  const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF), inf = _mm512_set1_epi32(0x7F800000);
  const __m512i quiet = _mm512_set1_epi32(0x40);
  for (int64_t t = t0; t < t1; ++t) {
    const float* src = x + t * ldx;
    uint16_t* dst = out + t * k;
    int64_t c = 0;
    for (; c + 16 <= k; c += 16) {
      const __m512i b = _mm512_loadu_si512(src + c);
      const __m512i lsb = _mm512_and_si512(shift_right(b, 16), lsb_mask);
      __m512i r = shift_right(_mm512_add_epi32(_mm512_add_epi32(b, bias), lsb), 16);
      const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(b, abs_mask), inf);
      r = _mm512_mask_or_epi32(r, nan, shift_right(b, 16), quiet);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + c), narrow_to_16(r));
    }
    for (; c < k; ++c) dst[c] = f32_to_bf16(src[c]);
  }
}

#endif  // WHALE_HAVE_BF16_DOT

void round_rows(const float* x, int64_t t0, int64_t t1, int64_t k, int64_t ldx, uint16_t* out) {
#if WHALE_HAVE_BF16_DOT
  if (available()) return round_rows_avx512(x, t0, t1, k, ldx, out);
#endif
  for (int64_t t = t0; t < t1; ++t)
    for (int64_t c = 0; c < k; ++c) out[t * k + c] = f32_to_bf16(x[t * ldx + c]);
}

}  // namespace

int64_t panel_rows(int64_t k) { return std::max<int64_t>(4, kPanelBytes / (2 * std::max<int64_t>(k, 1)) / 4 * 4); }

bool available() {
#if WHALE_HAVE_BF16_DOT
  static const bool ok = detect();
  return ok;
#else
  return false;
#endif
}

bool usable(int64_t k) { return available() && k > 0 && k % 32 == 0; }

void round_activations(const float* x, int64_t m, int64_t k, int64_t ldx, RoundedActivations& out, ThreadPool* pool) {
  out.m = m;
  out.k = k;
  out.buffer.resize(static_cast<size_t>(m * k) + kCacheLine / sizeof(uint16_t));
  out.offset = static_cast<size_t>(align_to_cache_line(out.buffer.data()) - out.buffer.data());
  uint16_t* dst = out.data();
  if (pool && pool->size() > 1 && m > 1 && m * k >= kParallelValues) {
    pool->parallel_for(m, [&](int64_t a, int64_t b) { round_rows(x, a, b, k, ldx, dst); });
  } else {
    round_rows(x, 0, m, k, ldx, dst);
  }
}

bool rows(const Weight2D& w, int64_t r0, int64_t r1, const RoundedActivations& xb, float* y, int64_t ldy,
          std::vector<uint16_t>& scratch) {
  if (w.dtype != DType::BF16 || !usable(w.cols) || xb.k != w.cols) return false;
#if WHALE_HAVE_BF16_DOT
  if (r0 < r1 && xb.m > 0) run(w, r0, r1, xb, y, ldy, scratch);
  return true;
#else
  return false;
#endif
}

void rows_reference(const Weight2D& w, int64_t r0, int64_t r1, const RoundedActivations& xb, float* y, int64_t ldy) {
  const int64_t k = xb.k;
  const auto* wd = reinterpret_cast<const uint16_t*>(w.data);
  for (int64_t t = 0; t < xb.m; ++t) {
    const uint16_t* xt = xb.data() + t * k;
    for (int64_t r = r0; r < r1; ++r) {
      const uint16_t* wr = wd + r * k;
      float lanes[16] = {};
      for (int64_t c = 0; c < k; c += 32)
        for (int j = 0; j < 16; ++j) {
          const int64_t odd = c + 2 * j + 1, even = c + 2 * j;
          lanes[j] += bf16_to_f32(wr[odd]) * bf16_to_f32(xt[odd]);
          lanes[j] += bf16_to_f32(wr[even]) * bf16_to_f32(xt[even]);
        }
      y[t * ldy + (r - r0)] = reduce_lanes(lanes);
    }
  }
}

}  // namespace whale::bf16dot
