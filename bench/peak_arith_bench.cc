// Peak arithmetic of one thread on x86 with AVX-512: f32 FMA, BF16 dot product (vdpbf16ps) and int8 dot product
// (vpdpbusd), each as 12 independent accumulator chains. Prints GFLOP/s (GOP/s for int8); skips what the CPU lacks.
// Run: taskset -c 0 build/release/bench/peak_arith_bench   (docs/performance.md, "This machine").
#include <chrono>
#include <cstdio>

#if defined(__x86_64__)
#include <immintrin.h>

namespace {

constexpr long kIterations = 100'000'000;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

#define WHALE_REPEAT12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((target("avx512f"))) double fma_f32() {
#define DECL(i) __m512 a##i = _mm512_set1_ps(1.0f + (i) * 1e-7f);
  WHALE_REPEAT12(DECL)
#undef DECL
  const __m512 b = _mm512_set1_ps(0.9999999f), c = _mm512_set1_ps(1e-7f);
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < kIterations; ++i) {
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, b, c);
    WHALE_REPEAT12(STEP)
#undef STEP
  }
  const double s = seconds_since(t0);
  float sink = 0;
#define SUM(i) sink += _mm512_reduce_add_ps(a##i);
  WHALE_REPEAT12(SUM)
#undef SUM
  std::printf("(checksum %g) ", sink);
  return kIterations * 12.0 * 32 / s / 1e9;
}

__attribute__((target("avx512f,avx512bf16"))) double dot_bf16() {
#define DECL(i) __m512 a##i = _mm512_setzero_ps();
  WHALE_REPEAT12(DECL)
#undef DECL
  const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80);
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < kIterations; ++i) {
#define STEP(i) a##i = _mm512_dpbf16_ps(a##i, x, x);
    WHALE_REPEAT12(STEP)
#undef STEP
  }
  const double s = seconds_since(t0);
  float sink = 0;
#define SUM(i) sink += _mm512_reduce_add_ps(a##i);
  WHALE_REPEAT12(SUM)
#undef SUM
  std::printf("(checksum %g) ", sink);
  return kIterations * 12.0 * 64 / s / 1e9;
}

__attribute__((target("avx512f,avx512vnni"))) double dot_int8() {
#define DECL(i) __m512i a##i = _mm512_set1_epi32(i);
  WHALE_REPEAT12(DECL)
#undef DECL
  const __m512i x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(5);
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < kIterations; ++i) {
#define STEP(i) a##i = _mm512_dpbusd_epi32(a##i, x, y);
    WHALE_REPEAT12(STEP)
#undef STEP
  }
  const double s = seconds_since(t0);
  long long sink = 0;
#define SUM(i) sink += _mm512_reduce_add_epi32(a##i);
  WHALE_REPEAT12(SUM)
#undef SUM
  std::printf("(checksum %lld) ", sink);
  return kIterations * 12.0 * 128 / s / 1e9;
}

}  // namespace

int main() {
  if (!__builtin_cpu_supports("avx512f")) {
    std::printf("no AVX-512 on this CPU\n");
    return 0;
  }
  std::printf("f32 FMA: %.1f GFLOP/s\n", fma_f32());
  if (__builtin_cpu_supports("avx512bf16")) std::printf("vdpbf16ps: %.1f GFLOP/s\n", dot_bf16());
  if (__builtin_cpu_supports("avx512vnni")) std::printf("vpdpbusd: %.1f GOP/s\n", dot_int8());
}
#else
int main() { std::printf("x86-64 only\n"); }
#endif
