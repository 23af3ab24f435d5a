// The read kernels are compiled once per instruction set by Highway's foreach_target; HWY_DYNAMIC_DISPATCH picks the
// best the CPU supports at run time (the build itself targets baseline x86-64).
#ifndef HWY_WANT_AVX3_DL
#error "HWY_WANT_AVX3_DL must be defined for every file (CMakeLists.txt): Highway's dispatch index is shared by all"
#endif

#include "whale/runtime/memory_bandwidth.h"

#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "whale/core/error.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "whale/runtime/memory_bandwidth.cc"
#include <hwy/foreach_target.h>  // NOLINT: re-includes this file once per target
#include <hwy/cache_control.h>
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace whale::bandwidth {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The sum of eight accumulators' lanes, as unsigned: Highway 1.0's SumOfLanes on AVX-512 uses GCC's
// _mm512_reduce_add_epi64, which adds in signed long long, and these sums wrap (undefined behaviour that UBSan
// reports).
template <class D, class V>
uint64_t SumAccumulators(D d, V a0, V a1, V a2, V a3, V a4, V a5, V a6, V a7) {
  const V sum = hn::Add(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)), hn::Add(hn::Add(a4, a5), hn::Add(a6, a7)));
  HWY_ALIGN uint64_t lane_sums[hn::MaxLanes(d)];
  hn::Store(sum, d, lane_sums);
  uint64_t s = 0;
  for (size_t l = 0; l < hn::Lanes(d); ++l) s += lane_sums[l];
  return s;
}

// Sum of the 64-bit words of p[0, bytes), p aligned to a vector. Eight independent accumulators: an integer add has
// one cycle of latency, so the loop is bound by the loads (and memory behind them). A software prefetch one 4 KiB page
// ahead starts the next page early (hardware prefetchers stop at page boundaries): a few percent on one thread.
uint64_t SumWords(const uint8_t* p, size_t bytes) {
  const hn::ScalableTag<uint64_t> d;
  const size_t lanes = hn::Lanes(d);
  const auto* w = reinterpret_cast<const uint64_t*>(p);
  const size_t n = bytes / sizeof(uint64_t);
  constexpr size_t kAhead = 4096 / sizeof(uint64_t);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  auto a4 = hn::Zero(d), a5 = hn::Zero(d), a6 = hn::Zero(d), a7 = hn::Zero(d);
  size_t i = 0;
  for (; i + 8 * lanes <= n; i += 8 * lanes) {
    if (i + kAhead < n) hwy::Prefetch(w + i + kAhead);
    a0 = hn::Add(a0, hn::Load(d, w + i));
    a1 = hn::Add(a1, hn::Load(d, w + i + lanes));
    a2 = hn::Add(a2, hn::Load(d, w + i + 2 * lanes));
    a3 = hn::Add(a3, hn::Load(d, w + i + 3 * lanes));
    a4 = hn::Add(a4, hn::Load(d, w + i + 4 * lanes));
    a5 = hn::Add(a5, hn::Load(d, w + i + 5 * lanes));
    a6 = hn::Add(a6, hn::Load(d, w + i + 6 * lanes));
    a7 = hn::Add(a7, hn::Load(d, w + i + 7 * lanes));
  }
  uint64_t s = SumAccumulators(d, a0, a1, a2, a3, a4, a5, a6, a7);
  for (; i < n; ++i) s += w[i];
  return s;
}

// The same sum with p[0, bytes) cut into four equal parts read side by side, two vectors of each per step, each part
// prefetched a page ahead: four streams per thread, as decode's tiles read four weight rows (BF16) or two row groups
// (q8/q4) at once. A core keeps more reads in flight over several streams, and on some hosts draws more bandwidth
// from them than from one (session 22's Xeon: the BF16 tile read 23% more than the one-stream loop).
uint64_t SumWordsFourStreams(const uint8_t* p, size_t bytes) {
  const hn::ScalableTag<uint64_t> d;
  const size_t lanes = hn::Lanes(d);
  const auto* w = reinterpret_cast<const uint64_t*>(p);
  const size_t n = bytes / sizeof(uint64_t);
  const size_t part = n / 4 / (8 * lanes) * (8 * lanes);  // words per stream, whole steps of 8 vectors
  const uint64_t* w0 = w;
  const uint64_t* w1 = w + part;
  const uint64_t* w2 = w + 2 * part;
  const uint64_t* w3 = w + 3 * part;
  constexpr size_t kAhead = 4096 / sizeof(uint64_t);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
  auto a4 = hn::Zero(d), a5 = hn::Zero(d), a6 = hn::Zero(d), a7 = hn::Zero(d);
  for (size_t i = 0; i < part; i += 8 * lanes) {
    if (i + kAhead < part) {
      hwy::Prefetch(w0 + i + kAhead);
      hwy::Prefetch(w1 + i + kAhead);
      hwy::Prefetch(w2 + i + kAhead);
      hwy::Prefetch(w3 + i + kAhead);
    }
    for (size_t j = i; j < i + 8 * lanes; j += 2 * lanes) {
      a0 = hn::Add(a0, hn::Load(d, w0 + j));
      a1 = hn::Add(a1, hn::Load(d, w0 + j + lanes));
      a2 = hn::Add(a2, hn::Load(d, w1 + j));
      a3 = hn::Add(a3, hn::Load(d, w1 + j + lanes));
      a4 = hn::Add(a4, hn::Load(d, w2 + j));
      a5 = hn::Add(a5, hn::Load(d, w2 + j + lanes));
      a6 = hn::Add(a6, hn::Load(d, w3 + j));
      a7 = hn::Add(a7, hn::Load(d, w3 + j + lanes));
    }
  }
  uint64_t s = SumAccumulators(d, a0, a1, a2, a3, a4, a5, a6, a7);
  for (size_t i = 4 * part; i < n; ++i) s += w[i];  // what the whole steps left
  return s;
}

const char* TargetName() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace whale::bandwidth
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace whale {
namespace bandwidth {

HWY_EXPORT(SumWords);
HWY_EXPORT(SumWordsFourStreams);
HWY_EXPORT(TargetName);

// The reference: one 64-bit load and add per word, four accumulators, kept scalar (no auto-vectorisation).
#if defined(__clang__)
uint64_t sum_words_scalar(const uint8_t* p, size_t bytes) {
#else
__attribute__((optimize("no-tree-vectorize"))) uint64_t sum_words_scalar(const uint8_t* p, size_t bytes) {
#endif
  const auto* w = reinterpret_cast<const uint64_t*>(p);
  const size_t n = bytes / sizeof(uint64_t);
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
#if defined(__clang__)
#pragma clang loop vectorize(disable) interleave(disable)
#endif
  for (; i + 4 <= n; i += 4) {
    s0 += w[i];
    s1 += w[i + 1];
    s2 += w[i + 2];
    s3 += w[i + 3];
  }
  for (; i < n; ++i) s0 += w[i];
  return s0 + s1 + s2 + s3;
}

}  // namespace bandwidth

namespace {
constexpr size_t kPage = 4096;
}  // namespace

uint64_t sum_words(ReadKernel kernel, const uint8_t* p, size_t bytes) {
  switch (kernel) {
    case ReadKernel::Simd: return HWY_DYNAMIC_DISPATCH(bandwidth::SumWords)(p, bytes);
    case ReadKernel::SimdFourStreams: return HWY_DYNAMIC_DISPATCH(bandwidth::SumWordsFourStreams)(p, bytes);
    case ReadKernel::Scalar: break;
  }
  return bandwidth::sum_words_scalar(p, bytes);
}

ReadBandwidthProbe::ReadBandwidthProbe(ThreadPool& pool, size_t total_bytes) : pool_(pool) {
  const int threads = pool.size();
  bytes_per_thread_ = std::max(kPage, total_bytes / threads / kPage * kPage);
  buffers_.assign(threads, nullptr);
  std::vector<int> huge(threads, 0);
  // One slice per thread (n = size, grain 1): slice t runs on thread t, which maps and first-touches its own buffer.
  pool.parallel_for(threads, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      void* p = mmap(nullptr, bytes_per_thread_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) continue;
#ifdef MADV_HUGEPAGE
      huge[t] = madvise(p, bytes_per_thread_, MADV_HUGEPAGE) == 0;
#endif
      // Distinct non-zero words, written once: the pages exist (no zero-page sharing) before any pass is timed.
      auto* w = static_cast<uint64_t*>(p);
      for (size_t i = 0; i < bytes_per_thread_ / sizeof(uint64_t); ++i) w[i] = i * 0x9E3779B97F4A7C15ull + 1;
      buffers_[t] = static_cast<uint8_t*>(p);
    }
  });
  for (uint8_t* p : buffers_)
    if (!p) {
      for (uint8_t* q : buffers_)
        if (q) munmap(q, bytes_per_thread_);
      fail("memory bandwidth probe: cannot map {} bytes per thread", bytes_per_thread_);
    }
  huge_pages_ = std::all_of(huge.begin(), huge.end(), [](int h) { return h != 0; });
}

ReadBandwidthProbe::~ReadBandwidthProbe() {
  for (uint8_t* p : buffers_)
    if (p) munmap(p, bytes_per_thread_);
}

std::vector<double> ReadBandwidthProbe::run(int passes, ReadKernel kernel) {
  std::vector<double> rates;
  std::vector<uint64_t> sums(buffers_.size());
  const int threads = static_cast<int>(buffers_.size());
  if (pool_.size() != threads) fail("memory bandwidth probe: made for {} threads, pool has {}", threads, pool_.size());
  for (int pass = 0; pass < passes; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    pool_.parallel_for(threads, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t)
        sums[t] = sum_words(kernel, buffers_[t], bytes_per_thread_);
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (uint64_t s : sums) sink_ += s;
    rates.push_back(static_cast<double>(total_bytes()) / seconds / 1e9);
  }
  return rates;
}

double ReadBandwidthProbe::best(int passes, ReadKernel kernel) {
  const std::vector<double> rates = run(std::max(passes, 1), kernel);
  return *std::max_element(rates.begin(), rates.end());
}

double ReadBandwidthProbe::ceiling(int passes) {
  return std::max(best(passes, ReadKernel::Simd), best(passes, ReadKernel::SimdFourStreams));
}

double measure_read_bandwidth(ThreadPool& pool, size_t total_bytes, int passes, ReadKernel kernel) {
  ReadBandwidthProbe probe(pool, total_bytes);
  return probe.best(passes, kernel);
}

std::string read_kernel_target() { return HWY_DYNAMIC_DISPATCH(bandwidth::TargetName)(); }

}  // namespace whale
#endif  // HWY_ONCE
