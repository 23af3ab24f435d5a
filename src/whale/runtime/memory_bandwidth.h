// Memory read bandwidth of this machine, measured the way decode reads weights: every thread of a pool streams its
// own buffer, much larger than the caches, once per pass, as one stream or as four side by side.
//
// This is the ceiling `whale bench` compares decode against (decode reads every active weight once per token, so its
// speed is bounded by bytes per token / read bandwidth). The reading kernel is SIMD (Highway, the widest instruction
// set the CPU has, chosen at run time) with eight independent accumulators, so that loads, not adds, limit it; the
// buffers are allocated and first touched by the thread that reads them (local on NUMA machines) and, where the
// kernel allows, backed by transparent huge pages so that TLB misses and 4 KiB prefetch boundaries do not lower the
// ceiling. A scalar kernel (one 64-bit load per add, not vectorised) is kept as a reference: the SIMD kernel must be at
// least as fast.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "whale/core/thread_pool.h"

namespace whale {

// Simd: one stream per thread. SimdFourStreams: each thread's buffer read as four streams side by side (see
// ceiling()). Scalar: one stream, one 64-bit word per add, the reference the SIMD kernels must beat.
enum class ReadKernel { Simd, SimdFourStreams, Scalar };

// Default buffer: 1 GiB in total, split evenly between the pool's threads (several times any last-level cache).
inline constexpr size_t kDefaultBandwidthBytes = size_t{1} << 30;
// Passes per kernel that `whale bench` (and the benchmarks that report a share of the probe beside it) take the best
// of in ceiling(): the same count everywhere, so that their shares of the probe compare.
inline constexpr int kCeilingPasses = 3;

class ReadBandwidthProbe {
 public:
  // Allocates total_bytes (rounded down to whole 4 KiB pages per thread, at least one page each) split between the
  // pool's threads, each part allocated and written once by the thread that will read it. Throws Error if the memory
  // cannot be had. The pool must outlive the probe's run() calls, not the probe itself.
  ReadBandwidthProbe(ThreadPool& pool, size_t total_bytes = kDefaultBandwidthBytes);
  ~ReadBandwidthProbe();
  ReadBandwidthProbe(const ReadBandwidthProbe&) = delete;
  ReadBandwidthProbe& operator=(const ReadBandwidthProbe&) = delete;

  // Reads every buffer `passes` times (all threads at once) and returns the GB/s (1e9 bytes per second) of each pass:
  // bytes read by all threads / wall time of the pass.
  std::vector<double> run(int passes, ReadKernel kernel = ReadKernel::Simd);
  // The best pass of run(passes, kernel) (interference from other processes only ever slows a pass down).
  double best(int passes, ReadKernel kernel = ReadKernel::Simd);
  // The ceiling decode is compared against: the better of best(passes) with one stream and with four streams per
  // thread, whichever way of reading this host gives more.
  double ceiling(int passes);

  size_t total_bytes() const { return bytes_per_thread_ * buffers_.size(); }
  int threads() const { return static_cast<int>(buffers_.size()); }
  bool huge_pages() const { return huge_pages_; }  // whether madvise(MADV_HUGEPAGE) was accepted

 private:
  ThreadPool& pool_;
  size_t bytes_per_thread_ = 0;
  std::vector<uint8_t*> buffers_;
  bool huge_pages_ = false;
  uint64_t sink_ = 0;  // the sums, kept so that the reads cannot be optimised away
};

// One probe: allocate, best of `passes` passes (GB/s), free.
double measure_read_bandwidth(ThreadPool& pool, size_t total_bytes = kDefaultBandwidthBytes, int passes = 5,
                              ReadKernel kernel = ReadKernel::Simd);

// The sum (mod 2^64) of the 64-bit words of p[0, bytes) as `kernel` reads them; p aligned to 64 bytes, bytes a
// multiple of 8. Every kernel gives the same sum: tests check that each reads every word once.
uint64_t sum_words(ReadKernel kernel, const uint8_t* p, size_t bytes);

// Instruction set of the SIMD read kernel (Highway's name for it, e.g. "AVX3").
std::string read_kernel_target();

}  // namespace whale
