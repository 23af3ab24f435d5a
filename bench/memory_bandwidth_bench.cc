// The memory read-bandwidth probe of `whale bench` (runtime/memory_bandwidth.h): SIMD with one stream per thread,
// SIMD with four streams per thread, and the scalar reference, for each thread count. Rounds alternate the kernels;
// every probe reports the best of its passes.
//
//   build/release/bench/memory_bandwidth_bench [MiB=1024] [passes=5] [rounds=3] [threads=1,2]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "whale/core/thread_pool.h"
#include "whale/runtime/memory_bandwidth.h"

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1024;
  const int passes = argc > 2 ? std::atoi(argv[2]) : 5;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 3;
  std::vector<int> thread_counts;
  std::stringstream list(argc > 4 ? argv[4] : "1,2");
  for (std::string item; std::getline(list, item, ',');) thread_counts.push_back(std::atoi(item.c_str()));

  std::printf("read kernel: %s, buffer %zu MiB in total, best of %d passes, %d rounds\n",
              whale::read_kernel_target().c_str(), mib, passes, rounds);
  for (int threads : thread_counts) {
    whale::ThreadPool pool(threads);
    whale::ReadBandwidthProbe probe(pool, mib << 20);
    std::vector<double> simd, four, scalar, ratio;
    for (int r = 0; r < rounds; ++r) {
      simd.push_back(probe.best(passes, whale::ReadKernel::Simd));
      four.push_back(probe.best(passes, whale::ReadKernel::SimdFourStreams));
      scalar.push_back(probe.best(passes, whale::ReadKernel::Scalar));
      ratio.push_back(four.back() / simd.back());
    }
    for (auto* v : {&simd, &four, &scalar, &ratio}) std::sort(v->begin(), v->end());
    std::printf("threads %d (huge pages %s): SIMD median %.2f GB/s [%.2f..%.2f], four streams median %.2f GB/s "
                "[%.2f..%.2f], scalar median %.2f GB/s [%.2f..%.2f]; four / one stream per round: median %.3f "
                "[%.3f..%.3f]\n",
                threads, probe.huge_pages() ? "yes" : "no", simd[simd.size() / 2], simd.front(), simd.back(),
                four[four.size() / 2], four.front(), four.back(), scalar[scalar.size() / 2], scalar.front(),
                scalar.back(), ratio[ratio.size() / 2], ratio.front(), ratio.back());
  }
  return 0;
}
