// AVX-512 VNNI helpers shared by matmul's SIMD files (matmul_simd.cc, matmul_simd_quant.cc, matmul_simd_xw.cc): the
// q8/q4 layout's scales and codes as vectors. Highway's -inl.h pattern: every file includes this once per target, from
// within its foreach_target pass; the helpers exist for the AVX3_DL target only.

#if defined(WHALE_KERNELS_MATMUL_SIMD_VNNI_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef WHALE_KERNELS_MATMUL_SIMD_VNNI_INL_H_
#undef WHALE_KERNELS_MATMUL_SIMD_VNNI_INL_H_
#else
#define WHALE_KERNELS_MATMUL_SIMD_VNNI_INL_H_
#endif

#include <hwy/highway.h>

#include "whale/kernels/quant_format.h"

#if HWY_TARGET == HWY_AVX3_DL
#include <immintrin.h>
#endif

HWY_BEFORE_NAMESPACE();
namespace whale::simd {
namespace HWY_NAMESPACE {

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
  // low nibble needs no mask. Two operations per vector fewer than masking, subtracting and converting.
  const __m512 values = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7);
  lo = _mm512_permutexvar_ps(v, values);
  hi = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), values);
}
#endif  // HWY_TARGET == HWY_AVX3_DL

}  // namespace HWY_NAMESPACE
}  // namespace whale::simd
HWY_AFTER_NAMESPACE();

#endif  // include guard, per target
