// Decode's weight streaming in isolation: one-token matmuls over distinct expert-shaped matrices (1408 × 2048) that
// together are several times the last-level cache, grouped as a decode layer groups them (gate and up of 8 experts in
// one matmul_batch, then the 8 downs), alternated with the read-bandwidth probe in the same run. Prints, per weight
// format, the median GB/s of the weights' bytes and its % of the median probe. This is the ceiling a decode step can
// reach on these kernels: everything else in a step (attention, norms, the router, waits) only lowers it.
// --tokens N multiplies N tokens per matrix instead of one (a batched step's experts: 16 sequences routed top-6 over
// 16 experts give each about 6), and also prints the integer (or f32) multiply-add rate, to tell whether such a pass is
// bound by the weights' bytes or by the arithmetic.
// BF16 weights multiply activations rounded to bf16, as whale's decode does by default (--activations bf16);
// --bf16-activations 0 measures the f32-activation tiles instead.
// Run: build/release/bench/decode_stream_bench [--mib 1536] [--threads 2] [--rounds 5] [--formats bf16,q8,q4]
//      [--tokens 1] [--bf16-activations 1]
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "whale/core/heap_policy.h"
#include "whale/core/thread_pool.h"
#include "whale/kernels/matmul.h"
#include "whale/kernels/quant_format.h"
#include "whale/kernels/quantize.h"
#include "whale/runtime/memory_bandwidth.h"

namespace whale {
namespace {

constexpr int64_t kRows = 1408, kCols = 2048;

// Bytes one matrix of `type` occupies, codes (or elements) and scales.
// Bytes of one matrix (q8/q4: codes and scales in superblocks).
size_t matrix_bytes(DType type) {
  if (type == DType::Q8 || type == DType::Q4)
    return static_cast<size_t>(quant_data_bytes(*quant_type_of(type), kRows, kCols));
  return static_cast<size_t>(kRows * kCols * 2);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int run(int argc, char** argv) {
  size_t mib = 1536;
  int threads = 2, rounds = 5, tokens = 1;
  bool nosync = false, bf16_activations = true;
  std::string formats = "bf16,q8,q4";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--mib")) mib = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--formats")) formats = argv[i + 1];
    else if (!std::strcmp(argv[i], "--nosync")) nosync = std::atoi(argv[i + 1]) != 0;
    else if (!std::strcmp(argv[i], "--tokens")) tokens = std::max(1, std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--bf16-activations")) bf16_activations = std::atoi(argv[i + 1]) != 0;
  }
  if (nosync && tokens > 1) return std::fprintf(stderr, "--nosync measures one token only\n"), 1;
  ThreadPool pool(threads);
  ReadBandwidthProbe probe(pool, size_t{1} << 30);
  for (const char* name : {"bf16", "q8", "q4"}) {
    if (formats.find(name) == std::string::npos) continue;
    const DType type = !std::strcmp(name, "bf16") ? DType::BF16 : !std::strcmp(name, "q8") ? DType::Q8 : DType::Q4;
    const size_t per = matrix_bytes(type);
    const size_t count = std::max<size_t>(24, (mib << 20) / per / 24 * 24);  // whole layers of 3 × 8 matrices
    const size_t bytes = count * per;
    auto* base = static_cast<uint8_t*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (base == MAP_FAILED) return std::fprintf(stderr, "cannot map %zu bytes\n", bytes), 1;
    madvise(base, bytes, MADV_HUGEPAGE);
    std::mt19937 rng(1);
    for (size_t i = 0; i < bytes; i += 4) {
      const uint32_t r = rng();
      std::memcpy(base + i, &r, 4);
    }
    std::vector<Weight2D> ws(count);
    for (size_t i = 0; i < count; ++i) {
      Weight2D& w = ws[i];
      w.dtype = type;
      w.bf16_activations = bf16_activations;
      w.rows = kRows;
      w.cols = kCols;
      w.data = base + i * per;
      if (const std::optional<QuantType> q = quant_type_of(type)) {
        set_quant_scales(*q, kRows, kCols, base + i * per, 0x2000);  // f16 2^-7
      } else {  // BF16: keep every element a normal number (exponents of 2^-8 .. 1)
        auto* e = base + i * per;
        for (size_t j = 1; j < per; j += 2) e[j] = static_cast<uint8_t>(0x3C + (e[j] & 3));
      }
    }
    std::vector<float> x(static_cast<size_t>(tokens) * kCols), gate(8 * tokens * kRows), up(8 * tokens * kRows),
        down(8 * tokens * kCols);
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.25f + 0.5f * static_cast<float>(i % 7) / 7.0f;
    std::vector<double> gb_s, probe_gb_s, gate_up_gb_s, down_gb_s;
    for (int r = 0; r < rounds; ++r) {
      double gate_up_s = 0, down_s = 0;
      const auto t0 = std::chrono::steady_clock::now();
      if (nosync) {
        // Each thread streams its own share of every matrix with no joins in between: the cost of the joins.
        pool.parallel_for(threads, [&](int64_t s, int64_t) {
          std::vector<float> y(kCols);
          for (size_t i = 0; i < count; ++i) {
            Weight2D w = ws[i];
            if (i % 3 == 2) std::swap(w.rows, w.cols);  // a down, as in the joined passes
            const int64_t groups = (w.rows + 15) / 16, g0 = groups * s / threads, g1 = groups * (s + 1) / threads;
            const auto part = weight_rows(w, g0 * 16, std::min(w.rows, g1 * 16));
            matmul_serial(*part, x.data(), 1, y.data());
          }
        });
      } else
      for (size_t layer = 0; layer < count / 24; ++layer) {
        std::vector<MatmulJob> jobs;
        for (int e = 0; e < 8; ++e) {
          jobs.push_back({ws[layer * 24 + 3 * e], x.data(), tokens, gate.data() + e * tokens * kRows});
          jobs.push_back({ws[layer * 24 + 3 * e + 1], x.data(), tokens, up.data() + e * tokens * kRows});
        }
        const auto g0 = std::chrono::steady_clock::now();
        matmul_batch(jobs, pool);
        const auto g1 = std::chrono::steady_clock::now();
        gate_up_s += std::chrono::duration<double>(g1 - g0).count();
        jobs.clear();
        for (int e = 0; e < 8; ++e) {
          Weight2D d = ws[layer * 24 + 3 * e + 2];
          std::swap(d.rows, d.cols);  // the same bytes read as 2048 × 1408
          jobs.push_back({d, gate.data() + e * tokens * kRows, tokens, down.data() + e * tokens * kCols});
        }
        const auto d0 = std::chrono::steady_clock::now();
        matmul_batch(jobs, pool);
        down_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - d0).count();
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      gb_s.push_back(static_cast<double>(bytes) / s / 1e9);
      if (!nosync) {
        gate_up_gb_s.push_back(static_cast<double>(bytes) * 2 / 3 / gate_up_s / 1e9);
        down_gb_s.push_back(static_cast<double>(bytes) / 3 / down_s / 1e9);
      }
      probe_gb_s.push_back(probe.ceiling(kCeilingPasses));  // as whale bench measures it
    }
    const double m = median(gb_s), p = median(probe_gb_s);
    // Multiply-adds per weight byte: every matrix's kRows × kCols weights meet each token once.
    const double macs_per_byte = static_cast<double>(kRows * kCols) * tokens / static_cast<double>(per);
    std::printf("%-5s %zu MiB, %d token(s): stream %.2f GB/s (%.1f G multiply-adds/s), probe %.2f GB/s, %.1f%% (rounds:",
                name, bytes >> 20, tokens, m, m * macs_per_byte, p, 100.0 * m / p);
    for (int r = 0; r < rounds; ++r) std::printf(" %.1f/%.1f", gb_s[r], probe_gb_s[r]);
    std::printf(")\n");
    // The passes apart: gate/up (K = 2048) and the downs (K = 1408, whose BF16 rows are not whole cache lines).
    if (!nosync)
      std::printf("      gate/up passes %.2f GB/s (%.1f%%), down passes %.2f GB/s (%.1f%%)\n", median(gate_up_gb_s),
                  100.0 * median(gate_up_gb_s) / p, median(down_gb_s), 100.0 * median(down_gb_s) / p);
    munmap(base, bytes);
  }
  return 0;
}

}  // namespace
}  // namespace whale

int main(int argc, char** argv) {
  whale::keep_large_allocations_in_heap();  // as the whale binary: matmul_batch's per-pass buffers stay in the heap
  return whale::run(argc, argv);
}
