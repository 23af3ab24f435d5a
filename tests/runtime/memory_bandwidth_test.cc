#include "whale/runtime/memory_bandwidth.h"

#include <cmath>
#include <vector>

#include <hwy/aligned_allocator.h>

#include <gtest/gtest.h>

namespace whale {
namespace {

// No timing thresholds: the machine running the tests may be busy. Only that a probe gives a sane number.
TEST(MemoryBandwidth, SmallBufferGivesPositiveFiniteRates) {
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    ReadBandwidthProbe probe(pool, 1 << 20);
    EXPECT_EQ(probe.threads(), threads);
    EXPECT_EQ(probe.total_bytes(), size_t{1} << 20);
    for (ReadKernel kernel : {ReadKernel::Simd, ReadKernel::SimdFourStreams, ReadKernel::Scalar}) {
      const std::vector<double> rates = probe.run(3, kernel);
      ASSERT_EQ(rates.size(), 3u);
      for (double r : rates) {
        EXPECT_TRUE(std::isfinite(r)) << r;
        EXPECT_GT(r, 0) << r;
      }
      const double best = probe.best(2, kernel);
      EXPECT_TRUE(std::isfinite(best) && best > 0) << best;
    }
    const double ceiling = probe.ceiling(2);
    EXPECT_TRUE(std::isfinite(ceiling) && ceiling > 0) << ceiling;
  }
}

// Each kernel must read every word exactly once, whatever the size: whole steps, the tail after them, and buffers
// smaller than one step of four streams.
TEST(MemoryBandwidth, EveryKernelSumsEveryWordOnce) {
  constexpr size_t kWords = 3 * 4096 + 77;
  const hwy::AlignedFreeUniquePtr<uint64_t[]> words = hwy::AllocateAligned<uint64_t>(kWords);
  for (size_t i = 0; i < kWords; ++i) words[i] = (i + 1) * 0x9E3779B97F4A7C15ull;
  const auto* p = reinterpret_cast<const uint8_t*>(words.get());
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{63}, size_t{64}, size_t{255}, size_t{256},
                   size_t{1000}, size_t{4096}, size_t{3 * 4096}, kWords}) {
    uint64_t expected = 0;
    for (size_t i = 0; i < n; ++i) expected += words[i];
    for (ReadKernel kernel : {ReadKernel::Simd, ReadKernel::SimdFourStreams, ReadKernel::Scalar})
      EXPECT_EQ(sum_words(kernel, p, n * sizeof(uint64_t)), expected)
          << n << " words, kernel " << static_cast<int>(kernel);
  }
}

TEST(MemoryBandwidth, TinyBuffersGetAPagePerThread) {
  ThreadPool pool(2);
  ReadBandwidthProbe probe(pool, 100);
  EXPECT_EQ(probe.total_bytes(), 2u * 4096);
  const double gb_s = measure_read_bandwidth(pool, 100, 1);
  EXPECT_TRUE(std::isfinite(gb_s) && gb_s > 0) << gb_s;
}

TEST(MemoryBandwidth, NamesItsInstructionSet) { EXPECT_FALSE(read_kernel_target().empty()); }

}  // namespace
}  // namespace whale
