#include "whale/core/thread_pool.h"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace whale {
namespace {

using Slices = std::vector<std::pair<int64_t, int64_t>>;

// Runs parallel_for and records every slice it was given (sorted by start) and how often each index was visited.
Slices run_and_record(ThreadPool& pool, int64_t n, int64_t grain, std::vector<int>& visits) {
  visits.assign(static_cast<size_t>(std::max<int64_t>(n, 0)), 0);
  std::vector<std::atomic<int>> counts(visits.size());
  std::mutex mutex;
  Slices slices;
  pool.parallel_for(
      n,
      [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) counts[static_cast<size_t>(i)].fetch_add(1);
        std::lock_guard lock(mutex);
        slices.emplace_back(begin, end);
      },
      grain);
  for (size_t i = 0; i < visits.size(); ++i) visits[i] = counts[i].load();
  std::sort(slices.begin(), slices.end());
  return slices;
}

TEST(ThreadPool, Size) {
  EXPECT_EQ(ThreadPool(1).size(), 1);
  EXPECT_EQ(ThreadPool(3).size(), 3);
  EXPECT_GE(ThreadPool(0).size(), 1);  // 0: one per hardware thread
}

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
  const int64_t lengths[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 63, 64, 65, 100, 127, 1000, 1001, 4099};
  const int64_t grains[] = {1, 2, 3, 7, 64, 1000, 1 << 20};
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    ASSERT_EQ(pool.size(), threads);
    for (int64_t n : lengths)
      for (int64_t grain : grains) {
        SCOPED_TRACE(testing::Message() << "threads " << threads << " n " << n << " grain " << grain);
        std::vector<int> visits;
        const Slices slices = run_and_record(pool, n, grain, visits);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(visits[i], 1) << "index " << i;
        // Contiguous, non-empty and in order: slice k ends where slice k+1 begins, from 0 to n.
        ASSERT_FALSE(slices.empty());
        EXPECT_EQ(slices.front().first, 0);
        EXPECT_EQ(slices.back().second, n);
        for (size_t k = 0; k < slices.size(); ++k) {
          EXPECT_LT(slices[k].first, slices[k].second);
          if (k + 1 < slices.size()) {
            EXPECT_EQ(slices[k].second, slices[k + 1].first);
          }
        }
        // At most one slice per thread, each at least `grain` long (or the whole range when n < grain).
        EXPECT_LE(static_cast<int>(slices.size()), threads);
        for (const auto& [b, e] : slices) EXPECT_GE(e - b, std::min(grain, n));
      }
  }
}

TEST(ThreadPool, UsesAllThreadsWhenThereIsEnoughWork) {
  // With n ≥ size · grain the range is split into size() slices: the pool does not leave threads idle.
  for (int threads : {2, 3, 8}) {
    ThreadPool pool(threads);
    std::vector<int> visits;
    EXPECT_EQ(static_cast<int>(run_and_record(pool, 1000, 1, visits).size()), threads);
    EXPECT_EQ(static_cast<int>(run_and_record(pool, 1000, 1000 / threads, visits).size()), threads);
  }
}

TEST(ThreadPool, ZeroAndNegativeLengthsCallNothing) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    int calls = 0;
    pool.parallel_for(0, [&](int64_t, int64_t) { ++calls; });
    pool.parallel_for(-5, [&](int64_t, int64_t) { ++calls; });
    pool.parallel_for(0, [&](int64_t, int64_t) { ++calls; }, 0);
    EXPECT_EQ(calls, 0);
  }
}

TEST(ThreadPool, NonPositiveGrainActsAsOne) {
  ThreadPool pool(3);
  for (int64_t grain : {0, -1}) {
    std::vector<int> visits;
    const Slices slices = run_and_record(pool, 10, grain, visits);
    for (int v : visits) EXPECT_EQ(v, 1);
    EXPECT_EQ(slices.size(), 3u);
  }
}

TEST(ThreadPool, SlicesAreDeterministic) {
  // "Splits a range statically so results never depend on timing": the same call gives the same slices.
  ThreadPool pool(3);
  std::vector<int> visits;
  const Slices first = run_and_record(pool, 1001, 7, visits);
  for (int rep = 0; rep < 50; ++rep) EXPECT_EQ(run_and_record(pool, 1001, 7, visits), first);
}

TEST(ThreadPool, RepeatedCalls) {
  // Many back-to-back jobs of varying size on one pool: no lost or doubled slices, no hang.
  for (int threads : {2, 3, 8}) {
    ThreadPool pool(threads);
    std::atomic<int64_t> total{0};
    int64_t expected = 0;
    for (int rep = 0; rep < 2000; ++rep) {
      const int64_t n = rep % 13;  // includes 0 and lengths below the thread count
      expected += n * (n - 1) / 2;
      pool.parallel_for(n, [&](int64_t b, int64_t e) {
        int64_t s = 0;
        for (int64_t i = b; i < e; ++i) s += i;
        total.fetch_add(s);
      });
    }
    EXPECT_EQ(total.load(), expected) << threads << " threads";
  }
}

TEST(ThreadPool, RunsOnSeveralThreads) {
  // Each slice blocks until all `threads` slices have started: passes only if they really run concurrently.
  constexpr int threads = 4;
  ThreadPool pool(threads);
  std::atomic<int> started{0};
  std::mutex mutex;
  std::set<std::thread::id> ids;
  pool.parallel_for(threads, [&](int64_t, int64_t) {
    started.fetch_add(1);
    while (started.load() < threads) std::this_thread::yield();
    std::lock_guard lock(mutex);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_EQ(ids.size(), static_cast<size_t>(threads));
  EXPECT_EQ(ids.count(std::this_thread::get_id()), 1u);  // the caller takes a slice too
}

TEST(ThreadPool, DestroysCleanlyAfterWork) {
  for (int rep = 0; rep < 20; ++rep) {
    auto pool = std::make_unique<ThreadPool>(8);
    std::atomic<int> n{0};
    pool->parallel_for(100, [&](int64_t b, int64_t e) { n.fetch_add(static_cast<int>(e - b)); });
    pool.reset();
    EXPECT_EQ(n.load(), 100);
  }
}

TEST(ThreadPool, ManyTinyCalls) {
  // 100k back-to-back jobs of a few indices each: the spinning hand-off must never lose, double or mix up a slice,
  // whether the workers are spinning (default), always blocking (spin 0) or in between (a 1 µs budget).
  // (Fewer calls for the blocking variants: each costs a futex wake-up, slow when the machine is busy.)
  using std::chrono::microseconds;
  for (const auto& [spin, calls] : {std::pair{ThreadPool::kDefaultSpin, 100000}, std::pair{microseconds(0), 20000},
                                    std::pair{microseconds(1), 20000}}) {
    ThreadPool pool(2, spin);
    std::vector<int64_t> out(4);
    int64_t checksum = 0, expected = 0;
    for (int rep = 0; rep < calls; ++rep) {
      const int64_t n = 1 + rep % 4;
      pool.parallel_for(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) out[static_cast<size_t>(i)] = rep * 4 + i;
      });
      for (int64_t i = 0; i < n; ++i) {
        checksum += out[static_cast<size_t>(i)];
        expected += rep * 4 + i;
      }
    }
    EXPECT_EQ(checksum, expected) << "spin " << spin.count() << " us";
  }
}

TEST(ThreadPool, ManyTinyCallsWithIdleThreads) {
  // Jobs with fewer slices than threads: workers without a slice must not touch the job the caller publishes next.
  // (4 threads: on a machine with fewer cores, nothing spins, and this tests the blocking hand-off.)
  ThreadPool pool(4);
  std::atomic<int64_t> total{0};
  int64_t expected = 0;
  for (int rep = 0; rep < 20000; ++rep) {
    const int64_t n = 1 + rep % (2 * pool.size());
    expected += n;
    pool.parallel_for(n, [&](int64_t b, int64_t e) { total.fetch_add(e - b, std::memory_order_relaxed); });
  }
  EXPECT_EQ(total.load(), expected);
}

TEST(ThreadPool, WakesWorkersAfterTheSpinBudget) {
  // Pauses longer than the spin budget send the workers to sleep; the next job must wake them.
  ThreadPool pool(2, std::chrono::microseconds(50));
  for (int rep = 0; rep < 20; ++rep) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::vector<int> visits;
    const Slices slices = run_and_record(pool, 10, 1, visits);
    EXPECT_EQ(slices, (Slices{{0, 5}, {5, 10}}));
  }
}

TEST(ThreadPool, NothingSpinsWithoutWorkers) {
  EXPECT_EQ(ThreadPool(1).spin().count(), 0);
  EXPECT_EQ(ThreadPool(2, std::chrono::microseconds(0)).spin().count(), 0);
  // More threads than the CPUs this process may use: spinning would steal the core of a thread with work.
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  const int cpus = CPU_COUNT(&set);
  EXPECT_EQ(ThreadPool(cpus + 1).spin().count(), 0);
  if (cpus >= 2) {
    EXPECT_GT(ThreadPool(2).spin().count(), 0);
  }
}

TEST(ThreadPool, RethrowsTheFirstExceptionAfterAllSlices) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int rep = 0; rep < 100; ++rep) {
      std::atomic<int> finished{0};
      EXPECT_THROW(pool.parallel_for(threads * 10,
                                     [&](int64_t b, int64_t) {
                                       if (b == 0) throw std::runtime_error("slice 0");
                                       finished.fetch_add(1);
                                     }),
                   std::runtime_error);
      EXPECT_EQ(finished.load(), threads - 1);  // every other slice ran to the end before the rethrow
      // The pool still works afterwards, and the error does not leak into the next job.
      std::vector<int> visits;
      run_and_record(pool, 100, 1, visits);
      for (int v : visits) ASSERT_EQ(v, 1);
    }
  }
}

// The load check stops the spinning only for an excess seen kLooks times in a row, kRecheckNs apart; a look without
// one starts the count again and puts the next look kIntervalNs on.
TEST(LoadLooks, OnlyAnExcessSeenInEveryLookInARowCounts) {
  static_assert(LoadLooks::kLooks >= 2, "a single look's excess must not stop the spinning");
  LoadLooks looks;
  EXPECT_EQ(looks.next_look_ns(), 0);
  int64_t now = 1'000;
  for (int i = 1; i < LoadLooks::kLooks; ++i) {
    EXPECT_FALSE(looks.record(true, now)) << "look " << i;
    EXPECT_EQ(looks.next_look_ns(), now + LoadLooks::kRecheckNs);
    now = looks.next_look_ns();
  }
  EXPECT_TRUE(looks.record(true, now));
  EXPECT_EQ(looks.next_look_ns(), now + LoadLooks::kIntervalNs);

  // A single quiet look in between: the count starts again.
  now = looks.next_look_ns();
  for (int i = 1; i < LoadLooks::kLooks; ++i) EXPECT_FALSE(looks.record(true, now += LoadLooks::kRecheckNs));
  EXPECT_FALSE(looks.record(false, now += LoadLooks::kRecheckNs));
  EXPECT_EQ(looks.next_look_ns(), now + LoadLooks::kIntervalNs);
  for (int i = 1; i < LoadLooks::kLooks; ++i) EXPECT_FALSE(looks.record(true, now += LoadLooks::kRecheckNs));
  EXPECT_TRUE(looks.record(true, now += LoadLooks::kRecheckNs));

  // Quiet looks never stop the spinning.
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(looks.record(false, now += LoadLooks::kIntervalNs));
}

}  // namespace
}  // namespace whale
