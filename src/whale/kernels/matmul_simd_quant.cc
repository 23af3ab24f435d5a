// SIMD kernels behind matmul for q8/q4 weights (kernels/quant_format.h): tiles of one row group (or two or four side by
// side) times up to 8 quantized tokens, an exact integer dot per block then one f32 multiply-add. On AVX-512 with VNNI
// (Highway's AVX3_DL target) with vpdpbusd; elsewhere exact integer arithmetic in portable code, the same bits.
// Compiled once per instruction set by Highway's foreach_target; HWY_DYNAMIC_DISPATCH picks the best at run time.

// AVX3_DL (VNNI, VBMI2, ...) is opt-in in Highway 1.0; CMakeLists.txt enables it for every file.
#ifndef HWY_WANT_AVX3_DL
#error "HWY_WANT_AVX3_DL must be defined for every file (CMakeLists.txt): Highway's dispatch index is shared by all"
#endif

#include "whale/kernels/matmul_simd.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "whale/core/dtype.h"
#include "whale/kernels/quantize.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "whale/kernels/matmul_simd_quant.cc"
#include <hwy/foreach_target.h>  // NOLINT: re-includes this file once per target
#include <hwy/highway.h>

#include "whale/kernels/matmul_simd_vnni-inl.h"

HWY_BEFORE_NAMESPACE();
namespace whale::simd {
namespace HWY_NAMESPACE {

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
// Which code lines of a block prefetch. q8 (QuadQ8OneToken) prefetches only a block's first line (one per 512 bytes,
// the hardware's stream prefetcher fetching the rest): `whale bench --model .../v2lite-bench-q8 -p 0 -n 32`,
// alternated with every line prefetched (session 40, Zen 5 VM), paired medians 1.046x, 1.060x, 1.041x and 1.038x over
// 10-12 rounds, ahead in 8 of 10-12 each; decode_stream_bench q8 2-9% faster in 3 rounds. q4 (PrefetchQ4QuadLineAt)
// keeps a prefetch per line: every 2 lines measured 0.78x, every 4 lines 0.90x (8-10 rounds each). Both prefetch the
// scale line of each superblock, with the second block's first code line.
// q4 line l of block kb (its codes at bp, its superblock's scale line at scale_line), `ahead` bytes on. Always
// inlined: left to GCC 12, its partial inlining of this function dropped every prefetch from the q8 four's tile
// (q8 decode 0.92x of the separate-scales layout, session 43; objdump counted none).
WHALE_VNNI_ATTR HWY_INLINE void PrefetchQ4QuadLineAt(const uint8_t* bp, const uint8_t* scale_line, int64_t kb, int l,
                                                     int64_t ahead) {
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
// G = 2: two adjacent row groups at once (the second with n_rows rows), their lines read side by side: two streams of
// weights in flight instead of one, and the same arithmetic per group as G = 1 (bitwise equal results). One token over
// four groups is QuadQ8OneToken's.
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
    // WHALE_VNNI_ATTR again: clang does not give a lambda the target of the function around it.
    const auto line = [&](int l) WHALE_VNNI_ATTR {
      for (int i = 0; i < G; ++i) {
        PrefetchGroupLine(bp[i] + 64 * l);
        if (l == 0 && kb % kQuantSuperBlocks == 0) PrefetchGroupLine(bp[i] + scale_line);
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

// One token over a four of q8 row groups (decode): the arithmetic of TileQ8Vnni (bitwise the same results; integer
// sums are exact, so one accumulator per group instead of two changes nothing), written so that every address is a
// pointer advanced by a constant: a superblock per step, its two blocks unrolled, each group's pointer, the scale
// line at a fixed offset, and one prefetch distance per loop (the last superblocks' reaches into the next four).
// Through TileQ8Vnni<1, 4> the addresses came from the block index by shifts, masks, a compare and moves between
// vector and general registers, which held back the loads of the blocks ahead. Zen 5 VM, session 51: a scratch copy of
// each, one core reading 512 MB of fours, 1.18x (95% of what the same loads read without arithmetic);
// decode_stream_bench q8 alternated in one process, one thread 1.23-1.25x (70-75% → 87-92% of the probe), two threads
// 0.99-1.08x; `whale bench -p 0 -n 32` q8 decode 1.06x (10 alternated rounds, ahead in 7-9). The same form for q4
// streamed 0.75-1.0x of TileQ4Vnni<1, 4> in decode_stream_bench (sessions 51-52, depending on the host's phase) and
// 0.86x in `whale bench` q4 decode (12 alternated rounds, ahead in none, session 52): not kept.
WHALE_VNNI_ATTR void QuadQ8OneToken(const Weight2D& w, int64_t g, int n_rows, const QuantizedActivations& xq,
                                    int64_t t0, float* y) {
  constexpr QuantType kType = QuantType::Q8;
  constexpr int64_t kSuper = quant_superblock_bytes(kType), kBlock = quant_group_block_bytes(kType);
  constexpr int64_t kScales = kQuantScalesAt(kType) - kQuantCodesAt;  // a superblock's scale line, from its codes
  const int64_t blocks = xq.blocks, superblocks = blocks / kQuantSuperBlocks;
  const int64_t group_bytes = quant_group_bytes(kType, blocks * kQuantBlock);
  const TiledTokens x = TokensAt<1>(xq, t0);
  const uint8_t* sb[4];  // each group's superblock
  for (int i = 0; i < 4; ++i) sb[i] = w.data + (g + i) * group_bytes + kQuantCodesAt;
  const int8_t* xb = x.q;
  const int32_t* corr = x.corr;
  const float* sx = x.scale;
  __m512 f[4];
  for (int i = 0; i < 4; ++i) f[i] = _mm512_setzero_ps();
  // Superblocks [s0, s1), each line's prefetch `ahead` bytes on (quad_ahead: fixed but for the last superblocks).
  const auto run = [&](int64_t s0, int64_t s1, int64_t ahead) WHALE_VNNI_ATTR {
    for (int64_t s = s0; s < s1; ++s, xb += kQuantSuperBlocks * kQuantBlock, corr += kQuantSuperBlocks,
                 sx += kQuantSuperBlocks) {
#pragma GCC unroll 2
      for (int b = 0; b < kQuantSuperBlocks; ++b) {
        const __m512i c0 = _mm512_set1_epi32(corr[b]);
        __m512i acc[4] = {c0, c0, c0, c0};
#pragma GCC unroll 8
        for (int l = 0; l < 8; ++l) {
          const __m512i xv = Broadcast4(xb + b * kQuantBlock + 4 * l);
#pragma GCC unroll 4
          for (int i = 0; i < 4; ++i) {
            const uint8_t* const line = sb[i] + b * kBlock + 64 * l;
            if (l == 0) _mm_prefetch(reinterpret_cast<const char*>(line + ahead), _MM_HINT_T0);
            if (l == 0 && b == kQuantSuperBlocks - 1)
              _mm_prefetch(reinterpret_cast<const char*>(sb[i] + kScales + ahead), _MM_HINT_T0);
            acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_loadu_si512(line), xv);
          }
        }
        const __m512 sxv = _mm512_set1_ps(sx[b]);
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i) {
          const __m512 sw = GroupBlockScales(sb[i] + kScales + b * kQuantRowGroup * 2);
          f[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i]), _mm512_mul_ps(sw, sxv), f[i]);
        }
      }
      for (int i = 0; i < 4; ++i) sb[i] += kSuper;
    }
  };
  const int64_t last = std::max<int64_t>(0, superblocks - kQuadAheadSuperblocks);
  run(0, last, quad_ahead<kType>(0, superblocks, group_bytes));
  run(last, superblocks, quad_ahead<kType>(superblocks - 1, superblocks, group_bytes));
  for (int i = 0; i < 4; ++i) StoreRows(y + i * kQuantRowGroup, i + 1 < 4 ? kQuantRowGroup : n_rows, f[i]);
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
          PrefetchQ4QuadLineAt(wp + i * group_bytes, scale_line + i * group_bytes, kb, l, ahead);
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
    if (xq.type == QuantType::Q8) QuadQ8OneToken(w, g, n_rows, xq, t0, y);
    else TileQ4Vnni<1, 4>(w, g, n_rows, xq, t0, y, ldy);
    return true;
  }
#endif
  (void)w, (void)g, (void)n_rows, (void)xq, (void)t0, (void)y, (void)ldy;
  return false;
}

}  // namespace HWY_NAMESPACE
}  // namespace whale::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace whale::simd {

HWY_EXPORT(UsesTiledActivations);
HWY_EXPORT(TileQuant);
HWY_EXPORT(TileQuantPair);
HWY_EXPORT(TileQuantQuad);

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

bool uses_tiled_activations() { return HWY_DYNAMIC_DISPATCH(UsesTiledActivations)(); }

}  // namespace whale::simd
#endif  // HWY_ONCE
