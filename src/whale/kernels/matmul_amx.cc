#include "whale/kernels/matmul_amx.h"

#include <algorithm>
#include <cstring>

#include "whale/kernels/quant_format.h"

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#define WHALE_HAVE_AMX 1
// GCC 12's AVX-512 conversion intrinsics start from _mm512_undefined_ps(), which -Wmaybe-uninitialized reports when
// they are inlined into a function with a target attribute (a false positive: the value is fully overwritten).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace whale::amx {

#if WHALE_HAVE_AMX
namespace {

#define WHALE_AMX_ATTR \
  __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")))

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

WHALE_AMX_ATTR void configure() {
  TileConfig cfg;
  for (int set = 0; set < 2; ++set) {
    cfg.rows[3 * set + 0] = kTileTokens, cfg.colsb[3 * set + 0] = 64;
    cfg.rows[3 * set + 1] = kTileTokens, cfg.colsb[3 * set + 1] = kQuantBlock;
    cfg.rows[3 * set + 2] = kQuantBlock / 4, cfg.colsb[3 * set + 2] = 64;
  }
  _tile_loadconfig(&cfg);
}

// Group g's codes as signed bytes in q8 line order, [blocks][8 lines][64]: q8 codes unbiased (xor 0x80), q4 nibbles
// spread to one byte each (lines 0-3: low nibbles, columns 0-15; lines 4-7: high nibbles, columns 16-31) minus 8.
WHALE_AMX_ATTR void signed_codes(const Weight2D& w, int64_t g, int64_t blocks, uint8_t* out) {
  if (w.dtype == DType::Q8) {
    const uint8_t* p = w.data + g * blocks * quant_group_block_bytes(QuantType::Q8);
    const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
    for (int64_t i = 0; i < blocks * 8; ++i)
      _mm512_store_si512(out + 64 * i, _mm512_xor_si512(_mm512_loadu_si512(p + 64 * i), flip));
    return;
  }
  const uint8_t* p = w.data + g * blocks * quant_group_block_bytes(QuantType::Q4);
  const __m512i low = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
  for (int64_t kb = 0; kb < blocks; ++kb)
    for (int l = 0; l < 4; ++l) {
      const __m512i v = _mm512_loadu_si512(p + kb * 256 + 64 * l);
      _mm512_store_si512(out + kb * 512 + 64 * l, _mm512_sub_epi8(_mm512_and_si512(v, low), eight));
      _mm512_store_si512(out + kb * 512 + 64 * (l + 4),
                         _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), low), eight));
    }
}

// f[t] = fma(float(C[t]), s_w · s_x[t], f[t]) for the 16 tokens of one block's result tile, stored at c.
WHALE_AMX_ATTR inline void accumulate(const int32_t* c, __m512 sw, const float* sx, int64_t sx_stride, __m512* f) {
#pragma GCC unroll 16
  for (int t = 0; t < kTileTokens; ++t)
    f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * t)),
                           _mm512_mul_ps(sw, _mm512_set1_ps(sx[t * sx_stride])), f[t]);
}

WHALE_AMX_ATTR inline __m512 block_scales(const Weight2D& w, int64_t g, int64_t blocks, int64_t kb) {
  return _mm512_cvtph_ps(
      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.qscale + (g * blocks + kb) * kQuantRowGroup)));
}

WHALE_AMX_ATTR void run(const Weight2D& w, int64_t g0, int64_t g1, const simd::QuantizedActivations& xq, float* y,
                        int64_t ldy, uint8_t* codes) {
  const int64_t blocks = xq.blocks, pc = blocks * kQuantBlock, m = xq.m;
  alignas(64) int32_t c0[kTileTokens * 16], c1[kTileTokens * 16];
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
      // Two blocks per step on two tile sets, so the second product runs while the first one's sums are scaled.
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
        _tile_stored(0, c0, 64);
        accumulate(c0, block_scales(w, g, blocks, kb), sx + kb, blocks, f);
        if (second) {
          _tile_stored(3, c1, 64);
          accumulate(c1, block_scales(w, g, blocks, kb + 1), sx + kb + 1, blocks, f);
        }
      }
      const int64_t tokens = std::min<int64_t>(kTileTokens, m - t0);
      for (int64_t t = 0; t < tokens; ++t)
        _mm512_mask_storeu_ps(y + (t0 + t) * ldy + g * kQuantRowGroup, row_mask, f[t]);
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
  const size_t bytes = static_cast<size_t>(xq.blocks * 512 + 64);
  if (scratch.size() < bytes) scratch.resize(bytes);
  auto* codes = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t{63});
  run(w, g0, g1, xq, y, ldy, codes);
  return true;
}

#else

bool available() { return false; }

bool quant_groups(const Weight2D&, int64_t, int64_t, const simd::QuantizedActivations&, float*, int64_t,
                  std::vector<uint8_t>&) {
  return false;
}

#endif

}  // namespace whale::amx
