// How much the q8 decode tile's arithmetic slows its weight streaming. Each thread reads its own buffer in the pattern
// of TileQ8Vnni<1, 4> (four adjacent 32 KB row groups side by side, one 64-byte line of each per step, a group's f16
// scales in a second region, one L1 prefetch per stream every other line, 4 KB ahead) with more and more of the
// tile's work per line:
//   loads     the lines and the scales summed as integers (the probe's work);
//   dot       one vpdpbusd per line (a broadcast int8 activation), the sums kept as integers to the group's end;
//   tile      the tile's arithmetic: two integer chains per group, then per 32-column block the f32 step
//             f = fma(float(sum), scale_w · scale_x, f).
// The variants alternate round by round; prints the median GB/s of each and its ratio to `loads`. On a core that
// overlaps arithmetic with waiting for memory the three read at about the same rate; where they do not, each adds
// its time (docs/performance.md, session 35).
// Run: build/release/bench/stream_arith_bench [--mib 1536] [--threads 2] [--rounds 7]
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>

namespace {

constexpr size_t kGroupBytes = 32768;                // a q8 row group at K = 2048: 64 blocks of 512 bytes
constexpr size_t kScaleBytes = kGroupBytes / 16;     // its f16 scales: 64 blocks × 16 rows × 2 bytes
constexpr size_t kFourBytes = 4 * kGroupBytes;       // four groups, read side by side
constexpr size_t kPrefetchBytes = 4096;

enum class Work { Loads, Dot, Tile };
constexpr Work kWorks[] = {Work::Loads, Work::Dot, Work::Tile};
const char* name_of(Work w) { return w == Work::Loads ? "loads" : w == Work::Dot ? "dot" : "tile"; }

// Codes at p (fours × kFourBytes), scales at s (fours × 4 × kScaleBytes); x: 2048 int8 activations, sx: 64 scales.
template <Work W>
__attribute__((target("avx512f,avx512bw,avx512vnni,f16c"))) uint64_t stream(const uint8_t* p, const uint8_t* s,
                                                                             size_t fours, const int8_t* x,
                                                                             const float* sx) {
  __m512i total[4];
  __m512 f[4];
  for (int i = 0; i < 4; ++i) total[i] = _mm512_setzero_si512(), f[i] = _mm512_setzero_ps();
  for (size_t q = 0; q < fours; ++q, p += kFourBytes, s += 4 * kScaleBytes) {
    for (size_t kb = 0; kb < kGroupBytes / 512; ++kb) {
      __m512i acc[4][2];
      for (int i = 0; i < 4; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
#pragma GCC unroll 8
      for (int l = 0; l < 8; ++l) {
        int32_t x4;
        std::memcpy(&x4, x + 32 * kb + 4 * l, 4);
        const __m512i xv = _mm512_set1_epi32(x4);
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i) {
          const uint8_t* line = p + i * kGroupBytes + 512 * kb + 64 * l;
          if (l % 2 == 0) _mm_prefetch(reinterpret_cast<const char*>(line + kPrefetchBytes), _MM_HINT_T0);
          const __m512i v = _mm512_load_si512(line);
          if constexpr (W == Work::Loads) acc[i][l % 2] = _mm512_add_epi64(acc[i][l % 2], v);
          else acc[i][l % 2] = _mm512_dpbusd_epi32(acc[i][l % 2], v, xv);
        }
      }
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        const uint8_t* sp = s + i * kScaleBytes + 32 * kb;
        if (kb % 2 == 0) _mm_prefetch(reinterpret_cast<const char*>(sp + 256), _MM_HINT_T0);
        const __m256i scales = _mm256_load_si256(reinterpret_cast<const __m256i*>(sp));
        if constexpr (W == Work::Tile) {
          const __m512 sw = _mm512_cvtph_ps(scales);
          const __m512i a = _mm512_add_epi32(acc[i][0], acc[i][1]);
          f[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), _mm512_mul_ps(sw, _mm512_set1_ps(sx[kb])), f[i]);
        } else {
          total[i] = _mm512_add_epi64(total[i], _mm512_add_epi64(_mm512_add_epi64(acc[i][0], acc[i][1]),
                                                                 _mm512_cvtepu16_epi32(scales)));
        }
      }
    }
  }
  alignas(64) uint64_t out[8];
  __m512i sum = _mm512_add_epi64(_mm512_add_epi64(total[0], total[1]), _mm512_add_epi64(total[2], total[3]));
  sum = _mm512_add_epi64(sum, _mm512_castps_si512(_mm512_add_ps(_mm512_add_ps(f[0], f[1]), _mm512_add_ps(f[2], f[3]))));
  _mm512_store_si512(out, sum);
  return out[0] ^ out[5];
}

uint64_t stream(Work w, const uint8_t* p, const uint8_t* s, size_t fours, const int8_t* x, const float* sx) {
  switch (w) {
    case Work::Loads: return stream<Work::Loads>(p, s, fours, x, sx);
    case Work::Dot: return stream<Work::Dot>(p, s, fours, x, sx);
    case Work::Tile: return stream<Work::Tile>(p, s, fours, x, sx);
  }
  return 0;
}

// One thread's share: codes then scales, in 2 MiB-aligned memory the thread itself maps and writes (distinct words,
// so no page is shared).
struct Share {
  void* map = nullptr;
  size_t map_bytes = 0;
  uint8_t* base = nullptr;
  size_t bytes = 0, fours = 0;
  const uint8_t* codes() const { return base; }
  const uint8_t* scales() const { return base + fours * kFourBytes; }
};

Share make_share(size_t bytes, int seed) {
  constexpr size_t kHuge = size_t{2} << 20;
  Share sh;
  sh.fours = bytes / (kFourBytes + 4 * kScaleBytes);
  sh.bytes = sh.fours * (kFourBytes + 4 * kScaleBytes);
  void* m = mmap(nullptr, sh.bytes + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return Share{};
  sh.map = m;
  sh.map_bytes = sh.bytes + kHuge;
  sh.base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(m) + kHuge - 1) & ~(kHuge - 1));
  madvise(sh.base, sh.bytes, MADV_HUGEPAGE);
  auto* w = reinterpret_cast<uint64_t*>(sh.base);
  for (size_t i = 0; i < sh.bytes / 8; ++i) w[i] = i * 0x9E3779B97F4A7C15ull + 1 + static_cast<uint64_t>(seed);
  return sh;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  size_t mib = 1536;
  int threads = 2, rounds = 7;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--mib")) mib = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--threads")) threads = std::max(1, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--rounds")) rounds = std::max(1, std::atoi(argv[i + 1]));
    else return std::fprintf(stderr, "unknown option %s\n", argv[i]), 1;
  }
  if (!__builtin_cpu_supports("avx512vnni") || !__builtin_cpu_supports("avx512bw"))
    return std::printf("stream_arith_bench: needs AVX-512 VNNI\n"), 0;
  std::vector<Share> shares(static_cast<size_t>(threads));
  {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] { shares[t] = make_share((mib << 20) / static_cast<size_t>(threads), t); });
    for (auto& th : pool) th.join();
  }
  size_t bytes = 0;
  for (const Share& sh : shares) {
    if (!sh.base) return std::fprintf(stderr, "cannot map %zu MiB\n", mib), 1;
    bytes += sh.bytes;
  }
  alignas(64) static int8_t x[2048];
  static float sx[64];
  for (int i = 0; i < 2048; ++i) x[i] = static_cast<int8_t>(i * 7);
  for (int i = 0; i < 64; ++i) sx[i] = 1.0f + static_cast<float>(i) / 64;
  std::vector<std::vector<double>> gb_s(3);
  uint64_t sink = 0;
  for (int r = 0; r < rounds; ++r)
    for (int v = 0; v < 3; ++v) {
      std::vector<uint64_t> sums(static_cast<size_t>(threads));
      const auto t0 = std::chrono::steady_clock::now();
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
          sums[t] = stream(kWorks[v], shares[t].codes(), shares[t].scales(), shares[t].fours, x, sx);
        });
      for (auto& th : pool) th.join();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      for (uint64_t u : sums) sink ^= u;
      gb_s[v].push_back(static_cast<double>(bytes) / s / 1e9);
    }
  const double loads = median(gb_s[0]);
  std::printf("%zu MiB, %d thread(s), %d rounds alternated (checksum %llu)\n", bytes >> 20, threads, rounds,
              static_cast<unsigned long long>(sink & 0xff));
  for (int v = 0; v < 3; ++v) {
    std::printf("%-6s median %6.2f GB/s, %.3f of loads (rounds:", name_of(kWorks[v]), median(gb_s[v]),
                median(gb_s[v]) / loads);
    for (double g : gb_s[v]) std::printf(" %.1f", g);
    std::printf(")\n");
  }
  for (const Share& sh : shares) munmap(sh.map, sh.map_bytes);
  return 0;
}

#else
int main() { std::printf("stream_arith_bench: x86-64 only\n"); }
#endif
