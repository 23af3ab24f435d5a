#include "whale/runtime/memory_bandwidth.h"

#include <cmath>

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
    for (ReadKernel kernel : {ReadKernel::Simd, ReadKernel::Scalar}) {
      const std::vector<double> rates = probe.run(3, kernel);
      ASSERT_EQ(rates.size(), 3u);
      for (double r : rates) {
        EXPECT_TRUE(std::isfinite(r)) << r;
        EXPECT_GT(r, 0) << r;
      }
      const double best = probe.best(2, kernel);
      EXPECT_TRUE(std::isfinite(best) && best > 0) << best;
    }
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
