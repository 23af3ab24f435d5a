// SIMD softmax, SwiGLU and row accumulation (Highway, runtime dispatch). exp is Highway's contrib Exp.
#ifndef HWY_WANT_AVX3_DL
#error "HWY_WANT_AVX3_DL must be defined for every file (CMakeLists.txt): Highway's dispatch index is shared by all"
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "whale/core/dtype.h"
#include "whale/kernels/activations.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "whale/kernels/activations_simd.cc"
#include <hwy/foreach_target.h>  // NOLINT: re-includes this file once per target
#include <hwy/cache_control.h>
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

HWY_BEFORE_NAMESPACE();
namespace whale {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void Softmax(float* x, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  // The max a vector at a time (a scalar loop waits a compare's latency per value: the softmax of a long-cache decode
  // layer's 16 × 2048 scores took 24-32 µs that way, 17-22 with this). Exact, so the same value as std::max value by
  // value; a NaN is passed over as std::max(mx, NaN) passes it (x86's max returns its second operand, the running
  // max, when the first is NaN).
  float mx = -std::numeric_limits<float>::infinity();
  int64_t i = 0;
  if (n >= N) {
    auto vm = hn::Set(df, mx);
    for (; i + N <= n; i += N) vm = hn::Max(hn::LoadU(df, x + i), vm);
    mx = hn::GetLane(hn::MaxOfLanes(df, vm));
  }
  for (; i < n; ++i) mx = std::max(mx, x[i]);
  const auto vmx = hn::Set(df, mx);
  double sum = 0.0;
  i = 0;
  for (; i + N <= n; i += N) {
    const auto e = hn::Exp(df, hn::Sub(hn::LoadU(df, x + i), vmx));
    hn::StoreU(e, df, x + i);
    sum += static_cast<double>(hn::GetLane(hn::SumOfLanes(df, e)));
  }
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  const auto vinv = hn::Set(df, inv);
  i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(df, x + i), vinv), df, x + i);
  for (; i < n; ++i) x[i] *= inv;
}

double ExpShiftedSum(const double* z, double shift, double* w, int64_t n) {
  const hn::ScalableTag<double> dd;
  const int64_t N = static_cast<int64_t>(hn::Lanes(dd));
  const auto vshift = hn::Set(dd, shift);
  // Below this e^x is 0 in double (std::exp gives at most a subnormal); also keeps -inf away from Exp's polynomial.
  const auto floor = hn::Set(dd, -745.0);
  auto acc = hn::Zero(dd);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto x = hn::Sub(hn::LoadU(dd, z + i), vshift);
    const auto e = hn::IfThenElseZero(hn::Gt(x, floor), hn::Exp(dd, hn::Max(x, floor)));
    hn::StoreU(e, dd, w + i);
    acc = hn::Add(acc, e);
  }
  double sum = hn::GetLane(hn::SumOfLanes(dd, acc));
  for (; i < n; ++i) sum += w[i] = std::exp(z[i] - shift);
  return sum;
}

// The lowest index of the maximum: the maximum in vectors, then the first lane equal to it.
template <typename T>
int64_t FirstArgmaxOf(const T* z, int64_t n) {
  const hn::ScalableTag<T> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  T mx = z[0];
  int64_t i = 0;
  if (n >= N) {
    auto m = hn::LoadU(d, z);
    for (i = N; i + N <= n; i += N) m = hn::Max(m, hn::LoadU(d, z + i));
    mx = hn::GetLane(hn::MaxOfLanes(d, m));
  }
  for (; i < n; ++i) mx = std::max(mx, z[i]);
  const auto vmx = hn::Set(d, mx);
  for (i = 0; i + N <= n; i += N) {
    const intptr_t lane = hn::FindFirstTrue(d, hn::Eq(hn::LoadU(d, z + i), vmx));
    if (lane >= 0) return i + lane;
  }
  for (; i < n; ++i)
    if (z[i] == mx) return i;
  return 0;  // unreachable: mx is one of the z
}
int64_t FirstArgmax(const double* z, int64_t n) { return FirstArgmaxOf(z, n); }
int64_t FirstArgmaxF32(const float* z, int64_t n) { return FirstArgmaxOf(z, n); }

void Swiglu(float* gate, const float* up, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const auto one = hn::Set(df, 1.0f);
  // e^{-z} overflows f32 beyond 88.7; there silu(z) = z·σ(z) is below 1e-36 in magnitude either way.
  const auto cap = hn::Set(df, 88.0f);
  auto lanes = [&](auto z, auto u) { return hn::Mul(hn::Div(z, hn::Add(one, hn::Exp(df, hn::Min(hn::Neg(z), cap)))), u); };
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(lanes(hn::LoadU(df, gate + i), hn::LoadU(df, up + i)), df, gate + i);
  // The tail through the same vector code (zero-padded), not a scalar loop: an element's value must not depend on
  // where it falls in the buffer (the buffer holds every token of a batch; a batched sequence must get what it gets
  // alone).
  if (i < n) {
    HWY_ALIGN float g[HWY_MAX_BYTES / sizeof(float)] = {}, u[HWY_MAX_BYTES / sizeof(float)] = {};
    std::copy(gate + i, gate + n, g);
    std::copy(up + i, up + n, u);
    hn::Store(lanes(hn::Load(df, g), hn::Load(df, u)), df, g);
    std::copy(g, g + (n - i), gate + i);
  }
}

void SwigluBackward(const float* g, const float* u, const float* dh, float* dg, float* du, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const auto one = hn::Set(df, 1.0f);
  const auto cap = hn::Set(df, 88.0f);  // as in Swiglu: σ(z) is 0 to f32 precision below −88
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto z = hn::LoadU(df, g + i);
    const auto sig = hn::Div(one, hn::Add(one, hn::Exp(df, hn::Min(hn::Neg(z), cap))));
    const auto d = hn::LoadU(df, dh + i);
    hn::StoreU(hn::Mul(d, hn::Mul(z, sig)), df, du + i);
    const auto slope = hn::Mul(sig, hn::MulAdd(z, hn::Sub(one, sig), one));
    hn::StoreU(hn::Mul(hn::Mul(d, hn::LoadU(df, u + i)), slope), df, dg + i);
  }
  for (; i < n; ++i) {
    const float sig = sigmoid(g[i]);
    du[i] = dh[i] * (g[i] * sig);
    dg[i] = dh[i] * u[i] * (sig * (g[i] * (1.0f - sig) + 1.0f));
  }
}

// A vector of f32 row values at p: f32 as stored, or bf16 widened exactly (its bits in the high half), the value
// decode_rows gives it.
template <class DF>
HWY_INLINE hn::Vec<DF> LoadRowVector(DF df, const float* p) {
  return hn::LoadU(df, p);
}
template <class DF>
HWY_INLINE hn::Vec<DF> LoadRowVector(DF df, const uint16_t* p) {
  const hn::RebindToUnsigned<DF> du;
  const hn::Rebind<uint16_t, DF> d16;
  return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(d16, p))));
}
inline float RowValue(const float* p) { return *p; }
inline float RowValue(const uint16_t* p) { return bf16_to_f32(*p); }

// y[t, :n] += Σ_j coef[t, j] · rows[j, :n] for t < m, j < k. Four rows of y at a time share each load of `rows`
// (attention mixes 8-16 heads' probabilities over the same cached latents); every element still gets its FMAs in
// j order, so the result does not depend on how rows are grouped, nor on whether bf16 rows were widened first.
// prefetch_bytes ≠ 0: each line of rows read is also prefetched that far on (rows streamed from memory).
// The rows go in blocks of kRowBlock, each block to every row of y before the next: a block's lines stay in L2 while
// the passes over it (rows of y × column panels) reuse them, where the whole of `rows` would not (attention's cached
// latents at a context of thousands are megabytes). The sums keep their j order across blocks.
constexpr int64_t kRowBlock = 128;
template <class Row>
void AddScaledRowsOf(const float* coef, int64_t ldc, int64_t m, const Row* rows, int64_t ldr, int64_t k, int64_t n,
                     float* y, int64_t ldy, int64_t prefetch_bytes) {
  using DF = hn::ScalableTag<float>;
  using VF = hn::Vec<DF>;
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  constexpr int kRows = 4;
  // A panel's 4 vectors of one row, and their lines prefetch_bytes on.
  auto prefetch_panel = [&](const Row* r) {
    if (prefetch_bytes == 0) return;
    const char* p = reinterpret_cast<const char*>(r) + prefetch_bytes;
    for (int64_t b = 0; b < static_cast<int64_t>(4 * N * sizeof(Row)); b += 64) hwy::Prefetch(p + b);
  };
  // Rows [t, t + kRows) over column panels of 4 vectors, rows [j0, j1); returns the first column not done.
  auto four_rows = [&](int64_t t, int64_t j0, int64_t j1) {
    int64_t c = 0;
    for (; c + 4 * N <= n; c += 4 * N) {
      VF a[kRows][4];
      for (int i = 0; i < kRows; ++i)
        for (int v = 0; v < 4; ++v) a[i][v] = hn::LoadU(df, y + (t + i) * ldy + c + v * N);
      for (int64_t j = j0; j < j1; ++j) {
        const Row* r = rows + j * ldr + c;
        prefetch_panel(r);
        const VF r0 = LoadRowVector(df, r), r1 = LoadRowVector(df, r + N), r2 = LoadRowVector(df, r + 2 * N),
                 r3 = LoadRowVector(df, r + 3 * N);
        for (int i = 0; i < kRows; ++i) {
          const VF s = hn::Set(df, coef[(t + i) * ldc + j]);
          a[i][0] = hn::MulAdd(s, r0, a[i][0]);
          a[i][1] = hn::MulAdd(s, r1, a[i][1]);
          a[i][2] = hn::MulAdd(s, r2, a[i][2]);
          a[i][3] = hn::MulAdd(s, r3, a[i][3]);
        }
      }
      for (int i = 0; i < kRows; ++i)
        for (int v = 0; v < 4; ++v) hn::StoreU(a[i][v], df, y + (t + i) * ldy + c + v * N);
    }
    return c;
  };
  // Row t from column c on, rows [j0, j1): panels of 4 vectors, then single vectors, then scalars.
  auto one_row = [&](int64_t t, int64_t c, int64_t j0, int64_t j1) {
    float* yt = y + t * ldy;
    const float* ct = coef + t * ldc;
    for (; c + 4 * N <= n; c += 4 * N) {
      auto a0 = hn::LoadU(df, yt + c), a1 = hn::LoadU(df, yt + c + N), a2 = hn::LoadU(df, yt + c + 2 * N),
           a3 = hn::LoadU(df, yt + c + 3 * N);
      for (int64_t j = j0; j < j1; ++j) {
        const auto s = hn::Set(df, ct[j]);
        const Row* r = rows + j * ldr + c;
        prefetch_panel(r);
        a0 = hn::MulAdd(s, LoadRowVector(df, r), a0);
        a1 = hn::MulAdd(s, LoadRowVector(df, r + N), a1);
        a2 = hn::MulAdd(s, LoadRowVector(df, r + 2 * N), a2);
        a3 = hn::MulAdd(s, LoadRowVector(df, r + 3 * N), a3);
      }
      hn::StoreU(a0, df, yt + c);
      hn::StoreU(a1, df, yt + c + N);
      hn::StoreU(a2, df, yt + c + 2 * N);
      hn::StoreU(a3, df, yt + c + 3 * N);
    }
    for (; c + N <= n; c += N) {
      auto a = hn::LoadU(df, yt + c);
      for (int64_t j = j0; j < j1; ++j) a = hn::MulAdd(hn::Set(df, ct[j]), LoadRowVector(df, rows + j * ldr + c), a);
      hn::StoreU(a, df, yt + c);
    }
    for (; c < n; ++c) {
      float a = yt[c];
      for (int64_t j = j0; j < j1; ++j) a += ct[j] * RowValue(rows + j * ldr + c);
      yt[c] = a;
    }
  };
  for (int64_t j0 = 0; j0 < k; j0 += kRowBlock) {
    const int64_t j1 = std::min(k, j0 + kRowBlock);
    int64_t t = 0;
    for (; t + kRows <= m; t += kRows) {
      const int64_t c = four_rows(t, j0, j1);
      for (int i = 0; i < kRows; ++i) one_row(t + i, c, j0, j1);
    }
    for (; t < m; ++t) one_row(t, 0, j0, j1);
  }
}

#if HWY_ARCH_X86_64 && HWY_TARGET <= HWY_AVX3
// 16 sums of lanes in one vector: lane 4i + j of the result is the sum of a[4j + i]'s lanes, each summed by the tree
// of _mm512_reduce_add_ps (SumOfLanes on AVX-512): lanes l and l + 8, then l and l + 4, then l and l + 2, then 0 and
// 1. So every sum has the bits SumOfLanes gives it alone, for 15 additions and 30 shuffles in place of 16 reductions
// of 7 operations and a scalar store each.
HWY_INLINE __m512 SumsOfLanes16(const __m512 a[16]) {
  __m512 b[8], c[4], d[2];
  for (int p = 0; p < 8; ++p)  // block r of b[p]: lanes 4r..4r+3 of a[2p + r / 2] plus the same 8 lanes on
    b[p] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * p], a[2 * p + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_f32x4(a[2 * p], a[2 * p + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  for (int p = 0; p < 4; ++p)  // block r of c[p]: a[4p + r]'s four partial sums
    c[p] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * p], b[2 * p + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(b[2 * p], b[2 * p + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  for (int p = 0; p < 2; ++p)  // block r of d[p]: two partial sums each of a[8p + r] and a[8p + 4 + r]
    d[p] = _mm512_add_ps(_mm512_shuffle_ps(c[2 * p], c[2 * p + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(c[2 * p], c[2 * p + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  // block r: the sums of a[r], a[4 + r], a[8 + r], a[12 + r]
  return _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_ps(d[0], d[1], _MM_SHUFFLE(3, 1, 3, 1)));
}
#endif

// out[i·ldo + j] = q_i · keys_j for RQ queries and RK keys, k columns: one vector accumulator per pair over the whole
// vectors in column order, its lanes summed, then the columns past the last whole vector one by one. Every instance
// computes a pair this way, so a dot product does not depend on the block it falls in (on AVX-512 a 4 × 4 block
// without column tail sums its 16 accumulators' lanes together, by the same tree as each alone: SumsOfLanes16).
// Each vector step also prefetches `pf.per_step` lines of the caller's prefetch range (RowDotsPrefetch).
struct RowDotsPrefetch {
  const char* next = nullptr;
  const char* end = nullptr;
  int per_step = 0;
  HWY_INLINE void step() {
    for (int i = 0; i < per_step && next < end; ++i, next += 64) hwy::Prefetch(next);
  }
};
template <int RQ, int RK>
HWY_INLINE void RowDotsBlock(const float* q, int64_t ldq, const float* keys, int64_t ldk, int64_t k, float* out,
                             int64_t ldo, RowDotsPrefetch& pf) {
  using DF = hn::ScalableTag<float>;
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  hn::Vec<DF> acc[RQ][RK];
  for (int i = 0; i < RQ; ++i)
    for (int j = 0; j < RK; ++j) acc[i][j] = hn::Zero(df);
  int64_t c = 0;
  for (; c + N <= k; c += N) {
    pf.step();
    hn::Vec<DF> kv[RK];
    for (int j = 0; j < RK; ++j) kv[j] = hn::LoadU(df, keys + j * ldk + c);
    for (int i = 0; i < RQ; ++i) {
      const auto qv = hn::LoadU(df, q + i * ldq + c);
      for (int j = 0; j < RK; ++j) acc[i][j] = hn::MulAdd(qv, kv[j], acc[i][j]);
    }
  }
#if HWY_ARCH_X86_64 && HWY_TARGET <= HWY_AVX3
  if constexpr (RQ == 4 && RK == 4) {
    if (c == k) {
      __m512 by_key[16];
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) by_key[4 * j + i] = acc[i][j].raw;
      const __m512 sums = SumsOfLanes16(by_key);  // block i: query i against the 4 keys
      _mm_storeu_ps(out, _mm512_castps512_ps128(sums));
      _mm_storeu_ps(out + ldo, _mm512_extractf32x4_ps(sums, 1));
      _mm_storeu_ps(out + 2 * ldo, _mm512_extractf32x4_ps(sums, 2));
      _mm_storeu_ps(out + 3 * ldo, _mm512_extractf32x4_ps(sums, 3));
      return;
    }
  }
#endif
  for (int i = 0; i < RQ; ++i)
    for (int j = 0; j < RK; ++j) {
      float sum = hn::GetLane(hn::SumOfLanes(df, acc[i][j]));
      for (int64_t t = c; t < k; ++t) sum += q[i * ldq + t] * keys[j * ldk + t];
      out[i * ldo + j] = sum;
    }
}

// Blocks of 4 queries × 4 keys (16 accumulators: each load of a key or query vector feeds 4 FMAs). Queries go in
// groups of two blocks, each group over every key block: a key block read from memory (or L2) by the first query block
// is in L1 for the second, and the group's 8 queries (18 KB at MLA's 576) stay in L1 throughout. Long-cache decode
// scores 16 heads against a 64-token page at a time; with the next page prefetched (prefetch_bytes from `prefetch`
// on, spread evenly over the call's vector steps) a layer's scores at 2048 cached tokens took 212 µs against 237 with
// the keys outside, the queries inside and only the next key block prefetched (whale bench -d 2048, q4, medians of
// 4 alternated runs; docs/performance.md, session 57).
void RowDots(const float* q, int64_t ldq, int64_t m, const float* keys, int64_t ldk, int64_t n, int64_t k, float* out,
             int64_t ldo, const float* prefetch, int64_t prefetch_bytes) {
  constexpr int kBlock = 4, kGroup = 2 * kBlock;
  const int64_t N = static_cast<int64_t>(hn::Lanes(hn::ScalableTag<float>()));
  RowDotsPrefetch pf;
  if (prefetch && prefetch_bytes > 0) {
    const int64_t lines = (prefetch_bytes + 63) / 64;
    const int64_t steps = std::max<int64_t>(1, ((m + kBlock - 1) / kBlock) * ((n + kBlock - 1) / kBlock) * (k / N));
    pf.next = reinterpret_cast<const char*>(prefetch);
    pf.end = pf.next + prefetch_bytes;
    pf.per_step = static_cast<int>((lines + steps - 1) / steps);
  }
  for (int64_t i0 = 0; i0 < m; i0 += kGroup) {
    const int64_t i1 = std::min(m, i0 + kGroup);
    int64_t j = 0;
    for (; j + kBlock <= n; j += kBlock) {
      const float* kj = keys + j * ldk;
      int64_t i = i0;
      for (; i + kBlock <= i1; i += kBlock)
        RowDotsBlock<kBlock, kBlock>(q + i * ldq, ldq, kj, ldk, k, out + i * ldo + j, ldo, pf);
      for (; i < i1; ++i) RowDotsBlock<1, kBlock>(q + i * ldq, ldq, kj, ldk, k, out + i * ldo + j, ldo, pf);
    }
    for (; j < n; ++j) {
      const float* kj = keys + j * ldk;
      int64_t i = i0;
      for (; i + kBlock <= i1; i += kBlock)
        RowDotsBlock<kBlock, 1>(q + i * ldq, ldq, kj, ldk, k, out + i * ldo + j, ldo, pf);
      for (; i < i1; ++i) RowDotsBlock<1, 1>(q + i * ldq, ldq, kj, ldk, k, out + i * ldo + j, ldo, pf);
    }
  }
}

// y[t, :n] += Σ_j coef[t·ldc + j] · rows[j][:n], row j at rows[j] (a cache's pages). Panels of 4 rows of y × 4
// vectors of columns over blocks of kAtBlockRows rows j: a row's panel of lines is read from memory once per block,
// by the first 4 rows of y, which also prefetch the same lines of the row kAtBlockRows on, and from L1 by the others.
// Bitwise AddScaledRowsOf: every element gets fma(coef, row value, y) in j order, and the columns past AddScaledRowsOf's
// last whole vector a multiply, then an add. Long-cache decode's mix (16 heads, a thread's 256 latent columns, 2048
// cached rows): 120-131 µs per layer against 300-330 in a standalone loop for the same sums with the heads as lanes
// and a pass over the rows per 16 columns; inside decode 109-197 against 161-239, depending on the host's phase
// (docs/performance.md, session 57).
constexpr int64_t kAtBlockRows = 128;
void AddScaledRowsAt(const float* coef, int64_t ldc, int64_t m, const float* const* rows, int64_t k, int64_t n,
                     float* y, int64_t ldy) {
  using DF = hn::ScalableTag<float>;
  using VF = hn::Vec<DF>;
  const DF df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  const int64_t fused_end = n / N * N, panel_end = fused_end / (4 * N) * (4 * N);
  const int64_t panel_bytes = 4 * N * static_cast<int64_t>(sizeof(float));
  // The first rows of y read a panel of rows [j0, j1) from memory: they prefetch its lines kAtBlockRows rows on.
  const auto prefetch = [&](int64_t j, int64_t c) {
    if (j + kAtBlockRows >= k) return;
    const char* p = reinterpret_cast<const char*>(rows[j + kAtBlockRows] + c);
    for (int64_t b = 0; b < panel_bytes; b += 64) hwy::Prefetch(p + b);
  };
  for (int64_t j0 = 0; j0 < k; j0 += kAtBlockRows) {
    const int64_t j1 = std::min(k, j0 + kAtBlockRows);
    for (int64_t c = 0; c < panel_end; c += 4 * N) {
      int64_t t = 0;
      for (; t + 4 <= m; t += 4) {
        VF a[4][4];
        for (int i = 0; i < 4; ++i)
          for (int v = 0; v < 4; ++v) a[i][v] = hn::LoadU(df, y + (t + i) * ldy + c + v * N);
        for (int64_t j = j0; j < j1; ++j) {
          if (t == 0) prefetch(j, c);
          const float* r = rows[j] + c;
          const VF r0 = hn::LoadU(df, r), r1 = hn::LoadU(df, r + N), r2 = hn::LoadU(df, r + 2 * N),
                   r3 = hn::LoadU(df, r + 3 * N);
          for (int i = 0; i < 4; ++i) {
            const VF s = hn::Set(df, coef[(t + i) * ldc + j]);
            a[i][0] = hn::MulAdd(s, r0, a[i][0]);
            a[i][1] = hn::MulAdd(s, r1, a[i][1]);
            a[i][2] = hn::MulAdd(s, r2, a[i][2]);
            a[i][3] = hn::MulAdd(s, r3, a[i][3]);
          }
        }
        for (int i = 0; i < 4; ++i)
          for (int v = 0; v < 4; ++v) hn::StoreU(a[i][v], df, y + (t + i) * ldy + c + v * N);
      }
      for (; t < m; ++t) {
        VF a[4];
        for (int v = 0; v < 4; ++v) a[v] = hn::LoadU(df, y + t * ldy + c + v * N);
        for (int64_t j = j0; j < j1; ++j) {
          if (t == 0) prefetch(j, c);
          const VF s = hn::Set(df, coef[t * ldc + j]);
          for (int v = 0; v < 4; ++v) a[v] = hn::MulAdd(s, hn::LoadU(df, rows[j] + c + v * N), a[v]);
        }
        for (int v = 0; v < 4; ++v) hn::StoreU(a[v], df, y + t * ldy + c + v * N);
      }
    }
    // Past the panels: single vectors, then the columns past the last whole vector.
    for (int64_t t = 0; t < m; ++t) {
      for (int64_t c = panel_end; c < fused_end; c += N) {
        VF a = hn::LoadU(df, y + t * ldy + c);
        for (int64_t j = j0; j < j1; ++j) a = hn::MulAdd(hn::Set(df, coef[t * ldc + j]), hn::LoadU(df, rows[j] + c), a);
        hn::StoreU(a, df, y + t * ldy + c);
      }
      for (int64_t c = fused_end; c < n; ++c) {
        float a = y[t * ldy + c];
        for (int64_t j = j0; j < j1; ++j) a += coef[t * ldc + j] * rows[j][c];
        y[t * ldy + c] = a;
      }
    }
  }
}

void AddScaledRows(const float* coef, int64_t ldc, int64_t m, const float* rows, int64_t ldr, int64_t k, int64_t n,
                   float* y, int64_t ldy) {
  AddScaledRowsOf(coef, ldc, m, rows, ldr, k, n, y, ldy, 0);
}

void AddScaledBf16Rows(const float* coef, int64_t ldc, int64_t m, const uint16_t* rows, int64_t ldr, int64_t k,
                       int64_t n, float* y, int64_t ldy, int64_t prefetch_bytes) {
  AddScaledRowsOf(coef, ldc, m, rows, ldr, k, n, y, ldy, prefetch_bytes);
}

}  // namespace HWY_NAMESPACE
}  // namespace whale
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace whale {

HWY_EXPORT(Softmax);
HWY_EXPORT(ExpShiftedSum);
HWY_EXPORT(FirstArgmax);
HWY_EXPORT(FirstArgmaxF32);
HWY_EXPORT(Swiglu);
HWY_EXPORT(SwigluBackward);
HWY_EXPORT(AddScaledRows);
HWY_EXPORT(AddScaledBf16Rows);
HWY_EXPORT(AddScaledRowsAt);
HWY_EXPORT(RowDots);

void softmax_inplace(float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(Softmax)(x, n); }

double exp_shifted_sum(const double* z, double shift, double* w, int64_t n) {
  return HWY_DYNAMIC_DISPATCH(ExpShiftedSum)(z, shift, w, n);
}

int64_t first_argmax(const double* z, int64_t n) { return HWY_DYNAMIC_DISPATCH(FirstArgmax)(z, n); }
int64_t first_argmax(const float* z, int64_t n) { return HWY_DYNAMIC_DISPATCH(FirstArgmaxF32)(z, n); }

void swiglu_inplace(float* gate, const float* up, int64_t n) { HWY_DYNAMIC_DISPATCH(Swiglu)(gate, up, n); }

void swiglu_backward(const float* g, const float* u, const float* dh, float* dg, float* du, int64_t n) {
  HWY_DYNAMIC_DISPATCH(SwigluBackward)(g, u, dh, dg, du, n);
}

void add_scaled_rows(const float* coef, int64_t ldc, int64_t m, const float* rows, int64_t ldr, int64_t k, int64_t n,
                     float* y, int64_t ldy) {
  HWY_DYNAMIC_DISPATCH(AddScaledRows)(coef, ldc, m, rows, ldr, k, n, y, ldy);
}

void add_scaled_rows_at(const float* coef, int64_t ldc, int64_t m, const float* const* rows, int64_t k, int64_t n,
                        float* y, int64_t ldy) {
  if (m <= 0 || k <= 0 || n <= 0) return;
  HWY_DYNAMIC_DISPATCH(AddScaledRowsAt)(coef, ldc, m, rows, k, n, y, ldy);
}

void add_scaled_bf16_rows(const float* coef, int64_t ldc, int64_t m, const uint16_t* rows, int64_t ldr, int64_t k,
                          int64_t n, float* y, int64_t ldy, int64_t prefetch_bytes) {
  HWY_DYNAMIC_DISPATCH(AddScaledBf16Rows)(coef, ldc, m, rows, ldr, k, n, y, ldy, prefetch_bytes);
}

void row_dots(const float* q, int64_t ldq, int64_t m, const float* keys, int64_t ldk, int64_t n, int64_t k, float* out,
              int64_t ldo, const float* prefetch, int64_t prefetch_bytes) {
  if (m <= 0 || n <= 0) return;
  HWY_DYNAMIC_DISPATCH(RowDots)(q, ldq, m, keys, ldk, n, k, out, ldo, prefetch, prefetch_bytes);
}

void row_dots_reference(const float* q, int64_t ldq, int64_t m, const float* keys, int64_t ldk, int64_t n, int64_t k,
                        float* out, int64_t ldo) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0.0;
      for (int64_t c = 0; c < k; ++c) sum += static_cast<double>(q[i * ldq + c]) * keys[j * ldk + c];
      out[i * ldo + j] = static_cast<float>(sum);
    }
}

}  // namespace whale
#endif  // HWY_ONCE
