// Round-trip latency of ThreadPool::parallel_for: how long one call takes when the work itself is (nearly) nothing.
// Decode calls parallel_for about a thousand times per token on small matrices, so this overhead is paid per token.
//
//   build/release/bench/thread_pool_bench [--benchmark_repetitions=5]
//
// Arguments are T (threads) and S (spin budget in µs; 0: workers and caller always block on a condition variable, as
// the pool did before it spun).
// BM_ParallelForEmpty/T/S: an empty slice on each of T threads (T = 1: the caller alone, no hand-off).
// BM_ParallelForTiny/T/S: each slice sums 256 floats, a stand-in for the smallest matmul slices of decode.
// BM_ParallelForSpaced/T/S: a call after ~50 µs of caller-only work (workers idle meanwhile), as between two small
// matmuls of a decode step.
#include <chrono>
#include <cstdint>
#include <numeric>
#include <vector>

#include <benchmark/benchmark.h>

#include "whale/core/thread_pool.h"

namespace {

constexpr int64_t kSpin = whale::ThreadPool::kDefaultSpin.count();

void BM_ParallelForEmpty(benchmark::State& state) {
  whale::ThreadPool pool(static_cast<int>(state.range(0)), std::chrono::microseconds(state.range(1)));
  const int64_t n = pool.size();
  for (auto _ : state) {
    pool.parallel_for(n, [](int64_t b, int64_t e) { benchmark::DoNotOptimize(b + e); });
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParallelForEmpty)->Args({1, 0})->Args({2, 0})->Args({2, kSpin})->UseRealTime();

void BM_ParallelForTiny(benchmark::State& state) {
  whale::ThreadPool pool(static_cast<int>(state.range(0)), std::chrono::microseconds(state.range(1)));
  std::vector<float> data(256 * 2, 1.0f);
  std::vector<float> out(2);
  for (auto _ : state) {
    pool.parallel_for(2, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[i] = std::accumulate(data.begin() + i * 256, data.begin() + (i + 1) * 256, 0.0f);
    });
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParallelForTiny)->Args({1, 0})->Args({2, 0})->Args({2, kSpin})->UseRealTime();

void BM_ParallelForSpaced(benchmark::State& state) {
  whale::ThreadPool pool(static_cast<int>(state.range(0)), std::chrono::microseconds(state.range(1)));
  const int64_t n = pool.size();
  for (auto _ : state) {
    state.PauseTiming();
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
    while (std::chrono::steady_clock::now() < until) {
    }
    state.ResumeTiming();
    pool.parallel_for(n, [](int64_t b, int64_t e) { benchmark::DoNotOptimize(b + e); });
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParallelForSpaced)->Args({1, 0})->Args({2, 0})->Args({2, kSpin})->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
