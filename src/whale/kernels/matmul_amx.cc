#include "whale/kernels/matmul_amx.h"

#include <algorithm>
#include <cstring>

#include "whale/core/cache_line.h"
#include "whale/core/dtype.h"
#include "whale/kernels/quant_format.h"

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#define WHALE_HAVE_AMX 1
#endif

namespace whale::amx {

#if WHALE_HAVE_AMX
namespace {

#define WHALE_AMX_ATTR \
  __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")))
// Every lane, for the zero-masking forms of the conversions below: GCC 12 writes their unmasked forms with
// _mm512_undefined_ps() as the merge source, which -Wmaybe-uninitialized reports once inlined into a function with a
// target attribute (a false positive). These are the same instructions, with no pragma to hide real warnings.
constexpr __mmask16 kAllLanes = 0xFFFF;

constexpr long kArchReqXcompPerm = 0x1023;  // arch_prctl: ask for an extended state component
constexpr long kXfeatureXtiledata = 18;     // AMX tile data

bool detect() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool tile = d & (1u << 24), int8 = d & (1u << 25), avx512 = (b & (1u << 16)) && (b & (1u << 30));
  if (!tile || !int8 || !avx512) return false;
  // The tile registers are off for a process until it asks (Linux 5.16+).
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

// Tile configuration (palette 1): tiles 0-2 and 3-5 are two sets of C (16 tokens × 16 rows, int32), A (16 tokens ×
// 32 activation bytes: one block) and B (8 × 64 bytes: one block of 16 rows in line order, 4 columns per row).
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// GCC does not see that ldtilecfg reads its operand and may drop the stores that fill it: the asm tells it the
// memory is read.
WHALE_AMX_ATTR inline void load_config(const TileConfig& cfg) {
  asm volatile("" : : "m"(cfg) : "memory");
  _tile_loadconfig(&cfg);
}

WHALE_AMX_ATTR void configure() {
  TileConfig cfg;
  for (int set = 0; set < 2; ++set) {
    cfg.rows[3 * set + 0] = kTileTokens, cfg.colsb[3 * set + 0] = 64;
    cfg.rows[3 * set + 1] = kTileTokens, cfg.colsb[3 * set + 1] = kQuantBlock;
    cfg.rows[3 * set + 2] = kQuantBlock / 4, cfg.colsb[3 * set + 2] = 64;
  }
  load_config(cfg);
}

// Group g's codes as signed bytes in q8 line order, [blocks][8 lines][64]: q8 codes unbiased (xor 0x80), q4 nibbles
// spread to one byte each (lines 0-3: low nibbles, columns 0-15; lines 4-7: high nibbles, columns 16-31) minus 8.
WHALE_AMX_ATTR void signed_codes(const Weight2D& w, int64_t g, int64_t blocks, uint8_t* out) {
  const int64_t padded_cols = blocks * kQuantBlock;
  if (w.dtype == DType::Q8) {
    const uint8_t* p = w.data + g * quant_group_bytes(QuantType::Q8, padded_cols);
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    for (int64_t kb = 0; kb < blocks; ++kb)
      for (int l = 0; l < 8; ++l)
        _mm512_store_si512(out + kb * 512 + 64 * l,
                           _mm512_xor_si512(_mm512_loadu_si512(p + quant_block_in_group(QuantType::Q8, kb) + 64 * l),
                                            flip));
    return;
  }
  const uint8_t* p = w.data + g * quant_group_bytes(QuantType::Q4, padded_cols);
  const __m512i low = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
  for (int64_t kb = 0; kb < blocks; ++kb)
    for (int l = 0; l < 4; ++l) {
      const __m512i v = _mm512_loadu_si512(p + quant_block_in_group(QuantType::Q4, kb) + 64 * l);
      _mm512_store_si512(out + kb * 512 + 64 * l, _mm512_sub_epi8(_mm512_and_si512(v, low), eight));
      _mm512_store_si512(out + kb * 512 + 64 * (l + 4),
                         _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), low), eight));
    }
}

// f[t] = fma(float(C[t]), s_w · s_x[t], f[t]) for the 16 tokens of one block's result tile, stored at c.
WHALE_AMX_ATTR inline void accumulate(const int32_t* c, __m512 sw, const float* sx, int64_t sx_stride, __m512* f) {
#pragma GCC unroll 16
  for (int t = 0; t < kTileTokens; ++t)
    f[t] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(kAllLanes, _mm512_load_si512(c + 16 * t)),
                           _mm512_mul_ps(sw, _mm512_set1_ps(sx[t * sx_stride])), f[t]);
}

WHALE_AMX_ATTR inline __m512 block_scales(const Weight2D& w, int64_t g, int64_t blocks, int64_t kb) {
  const QuantType t = w.dtype == DType::Q8 ? QuantType::Q8 : QuantType::Q4;
  const uint8_t* p = w.data + g * quant_group_bytes(t, blocks * kQuantBlock) + quant_scales_in_group(t, kb);
  return _mm512_maskz_cvtph_ps(kAllLanes, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

WHALE_AMX_ATTR void run(const Weight2D& w, int64_t g0, int64_t g1, const simd::QuantizedActivations& xq, float* y,
                        int64_t ldy, uint8_t* codes) {
  const int64_t blocks = xq.blocks, pc = blocks * kQuantBlock, m = xq.m;
  alignas(64) int32_t sums[2][2][kTileTokens * 16];
  configure();
  for (int64_t g = g0; g < g1; ++g) {
    signed_codes(w, g, blocks, codes);
    const int n_rows = static_cast<int>(std::min<int64_t>(kQuantRowGroup, w.rows - g * kQuantRowGroup));
    const __mmask16 row_mask = static_cast<__mmask16>((1u << n_rows) - 1);
    for (int64_t t0 = 0; t0 < m; t0 += kTileTokens) {
      const int8_t* a = xq.q.data() + t0 * pc;
      const float* sx = xq.scale.data() + t0 * blocks;
      __m512 f[kTileTokens];
#pragma GCC unroll 16
      for (int t = 0; t < kTileTokens; ++t) f[t] = _mm512_setzero_ps();
      // Two blocks per step on two tile sets. A pair's sums are scaled one step later, from the buffer it was stored
      // to, not straight after the store: matmul_bench q4/q8 expert at 64 and 256 tokens on one thread, best of 10,
      // 3 alternations: 0-10% faster (the blocks are still scaled in order, so the results are the same bits).
      for (int64_t kb = 0; kb < blocks; kb += 2) {
        const bool second = kb + 1 < blocks;
        _tile_loadd(1, a + kb * kQuantBlock, pc);
        _tile_loadd(2, codes + kb * 512, 64);
        _tile_zero(0);
        _tile_dpbssd(0, 1, 2);
        if (second) {
          _tile_loadd(4, a + (kb + 1) * kQuantBlock, pc);
          _tile_loadd(5, codes + (kb + 1) * 512, 64);
          _tile_zero(3);
          _tile_dpbssd(3, 4, 5);
        }
        int32_t(*cur)[kTileTokens * 16] = sums[(kb / 2) & 1];
        if (kb >= 2) {
          int32_t(*prev)[kTileTokens * 16] = sums[((kb / 2) + 1) & 1];
          accumulate(prev[0], block_scales(w, g, blocks, kb - 2), sx + kb - 2, blocks, f);
          accumulate(prev[1], block_scales(w, g, blocks, kb - 1), sx + kb - 1, blocks, f);
        }
        _tile_stored(0, cur[0], 64);
        if (second) _tile_stored(3, cur[1], 64);
      }
      if (blocks > 0) {
        const int64_t last = (blocks - 1) / 2 * 2;  // the last pair's first block; its second exists if blocks is even
        accumulate(sums[(last / 2) & 1][0], block_scales(w, g, blocks, last), sx + last, blocks, f);
        if (last + 1 < blocks)
          accumulate(sums[(last / 2) & 1][1], block_scales(w, g, blocks, last + 1), sx + last + 1, blocks, f);
      }
      const int64_t tokens = std::min<int64_t>(kTileTokens, m - t0);
      // Every index constant once unrolled, so that f stays in registers (a loop to `tokens` kept it on the stack).
#pragma GCC unroll 16
      for (int t = 0; t < kTileTokens; ++t)
        if (t < tokens) _mm512_mask_storeu_ps(y + (t0 + t) * ldy + g * kQuantRowGroup, row_mask, f[t]);
    }
  }
  _tile_release();
}


// --- BF16 ---------------------------------------------------------------------------------------------------------
// Weights are the first operand, read in place: 16 rows × 32 values (64 bytes of each row) per tile, row-major as
// the checkpoint stores them. The activations, prepared once per product (split_bf16), are the second operand. The
// result tile holds C[row][token], accumulated in f32 over all of k, and is transposed into y at the end.

bool detect_bf16() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return (d & (1u << 22)) && detect();  // AMX-BF16, and the tile state granted
}

// Tiles 0-1: C for two token tiles (16 rows × 16 tokens f32); 2: A, 16 weight rows × 32 bf16; 3-6: B, hi and lo
// activations of the two token tiles (16 column pairs × 16 tokens × 2 bf16).
WHALE_AMX_ATTR void configure_bf16() {
  TileConfig cfg;
  for (int t = 0; t < 7; ++t) cfg.rows[t] = 16, cfg.colsb[t] = 64;
  load_config(cfg);
}

#define WHALE_AMX_BF16_ATTR \
  __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")))

WHALE_AMX_BF16_ATTR void run_bf16(const uint8_t* rows, int64_t row_stride, int n_rows, int64_t k,
                                  const Bf16Activations& xb, float* y, int64_t ldy) {
  const int64_t kt = k / 32, tiles = (xb.m + kTileTokens - 1) / kTileTokens;
  alignas(64) float c[2][16 * 16];
  configure_bf16();
  for (int64_t tt = 0; tt < tiles; tt += 2) {
    const bool two = tt + 1 < tiles;
    const uint16_t* h0 = xb.hi.data() + tt * kt * 512;
    const uint16_t* l0 = xb.lo.data() + tt * kt * 512;
    _tile_zero(0);
    _tile_zero(1);
    for (int64_t j = 0; j < kt; ++j) {
      _tile_loadd(2, rows + j * 64, row_stride);
      _tile_loadd(3, h0 + j * 512, 64);
      _tile_loadd(4, l0 + j * 512, 64);
      _tile_dpbf16ps(0, 2, 3);
      _tile_dpbf16ps(0, 2, 4);
      if (two) {
        _tile_loadd(5, h0 + (kt + j) * 512, 64);
        _tile_loadd(6, l0 + (kt + j) * 512, 64);
        _tile_dpbf16ps(1, 2, 5);
        _tile_dpbf16ps(1, 2, 6);
      }
    }
    _tile_stored(0, c[0], 64);
    if (two) _tile_stored(1, c[1], 64);
    for (int s = 0; s < (two ? 2 : 1); ++s) {
      const int64_t t0 = (tt + s) * kTileTokens, tokens = std::min<int64_t>(kTileTokens, xb.m - t0);
      for (int64_t t = 0; t < tokens; ++t)
        for (int r = 0; r < n_rows; ++r) y[(t0 + t) * ldy + r] = c[s][r * 16 + t];
    }
  }
  _tile_release();
}
}  // namespace

bool available() {
  static const bool ok = detect();
  return ok;
}

bool quant_groups(const Weight2D& w, int64_t g0, int64_t g1, const simd::QuantizedActivations& xq, float* y,
                  int64_t ldy, std::vector<uint8_t>& scratch) {
  if (!available() || g0 >= g1) return available();
  // The tiles load whole tiles of 16 tokens: fewer tokens than kQuantTokenPad are not padded (quantized_rows).
  const int64_t padded_tokens = (xq.m + kTileTokens - 1) / kTileTokens * kTileTokens;
  if (static_cast<int64_t>(xq.q.size()) < padded_tokens * xq.blocks * kQuantBlock) return false;
  const size_t bytes = static_cast<size_t>(xq.blocks * 512) + kCacheLine;
  if (scratch.size() < bytes) scratch.resize(bytes);
  uint8_t* codes = align_to_cache_line(scratch.data());
  run(w, g0, g1, xq, y, ldy, codes);
  return true;
}

bool bf16_usable(int64_t k) {
  static const bool ok = detect_bf16();
  return ok && k > 0 && k % 32 == 0;
}

void split_bf16(const float* x, int64_t m, int64_t k, int64_t ldx, Bf16Activations& out) {
  const int64_t tiles = (m + kTileTokens - 1) / kTileTokens, kt = k / 32;
  out.m = m;
  out.k = k;
  out.hi.assign(static_cast<size_t>(tiles * kt * 512), 0);
  out.lo.assign(out.hi.size(), 0);
  for (int64_t t = 0; t < m; ++t)
    for (int64_t c = 0; c < k; ++c) {
      const float v = x[t * ldx + c];
      const uint16_t hi = f32_to_bf16(v);
      const size_t at = static_cast<size_t>(((t / kTileTokens * kt + c / 32) * 16 + (c % 32) / 2) * 32 +
                                            (t % kTileTokens) * 2 + c % 2);
      out.hi[at] = hi;
      out.lo[at] = f32_to_bf16(v - bf16_to_f32(hi));
    }
}

bool bf16_rows(const Weight2D& w, int64_t r0, int64_t r1, const Bf16Activations& xb, float* y, int64_t ldy,
               std::vector<uint8_t>& scratch) {
  if (!bf16_usable(w.cols) || w.dtype != DType::BF16) return false;
  const int64_t row_bytes = w.cols * 2;
  for (int64_t r = r0; r < r1; r += 16) {
    const int n = static_cast<int>(std::min<int64_t>(16, r1 - r));
    const uint8_t* rows = w.data + r * row_bytes;
    if (n < 16) {  // the tile reads 16 rows: copy a partial group into zero-padded scratch
      scratch.assign(static_cast<size_t>(16 * row_bytes), 0);
      std::memcpy(scratch.data(), rows, static_cast<size_t>(n * row_bytes));
      rows = scratch.data();
    }
    run_bf16(rows, row_bytes, n, w.cols, xb, y + r, ldy);
  }
  return true;
}

#else

bool available() { return false; }
bool bf16_usable(int64_t) { return false; }
void split_bf16(const float*, int64_t, int64_t, int64_t, Bf16Activations&) {}
bool bf16_rows(const Weight2D&, int64_t, int64_t, const Bf16Activations&, float*, int64_t, std::vector<uint8_t>&) {
  return false;
}

bool quant_groups(const Weight2D&, int64_t, int64_t, const simd::QuantizedActivations&, float*, int64_t,
                  std::vector<uint8_t>&) {
  return false;
}

#endif

}  // namespace whale::amx
