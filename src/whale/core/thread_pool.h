// The engine's one pool of worker threads. parallel_for splits a range statically so results never depend on timing.
//
// Hand-off: decode calls parallel_for about a thousand times per token on small matrices, so waking a worker must cost
// far less than a condition variable's tens of microseconds. A job is published through one atomic word; idle workers
// spin on it (with a pause instruction) for a bounded time after their last job, then block on a condition variable.
// The caller waits for the other slices the same way: spin, then block. So a busy pool hands off in well under a
// microsecond, and an idle one stops using the CPU once the spin budget is spent. On a machine with more runnable
// threads than cores, spinning would slow hand-offs down instead: there the pool blocks at once (thread_pool.cc).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "whale/core/cache_line.h"

namespace whale {

// Whether the machine is too busy for the pool to spin, from looks at its count of runnable threads (/proc/loadavg):
// one look sees one instant, and a kernel thread runnable just then looks like a busy machine, so an excess counts only
// when kLooks looks in a row, kRecheckNs apart, all find it. Without an excess the next look is kIntervalNs on.
class LoadLooks {
 public:
  static constexpr int64_t kIntervalNs = 100'000'000, kRecheckNs = 2'000'000;
  static constexpr int kLooks = 3;

  // Records a look at time now_ns (excess: more runnable threads than cores); returns whether it confirms the excess.
  bool record(bool excess, int64_t now_ns);
  // When to look next (steady_clock ns): 0 before the first look.
  int64_t next_look_ns() const { return next_look_ns_; }

 private:
  int in_a_row_ = 0;
  int64_t next_look_ns_ = 0;
};

class ThreadPool {
 public:
  // How long an idle worker (or the waiting caller) spins before it blocks.
  static constexpr std::chrono::microseconds kDefaultSpin{200};

  // n_threads counts the calling thread; 0 means one per hardware thread. `spin` is the spin budget; nothing spins
  // when it is zero, when there are no workers (n_threads == 1), or when n_threads exceeds the CPUs this process may
  // run on (sched_getaffinity; a spinning thread would then take the core of one with work to do).
  explicit ThreadPool(int n_threads = 0, std::chrono::microseconds spin = kDefaultSpin);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // The spin budget in effect (zero when nothing spins).
  std::chrono::microseconds spin() const { return spin_; }

  // Calls fn(begin, end) on disjoint slices covering [0, n), one slice per thread, and waits for all of them.
  // Slices are contiguous and at least `grain` long; slice s always runs on thread s (the caller is thread 0), so the
  // split depends only on n, grain and size(). Not reentrant: fn must not call parallel_for, and only one thread may
  // call parallel_for at a time. If fn throws, the first exception is rethrown here once every slice has finished.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

 private:
  void worker_loop(int index);
  template <typename Done>
  bool spin_until(Done done);
  void check_load();
  // Waits until the job word differs from `seen` or the pool is stopping; returns the job word.
  uint64_t wait_for_job(uint64_t seen);
  void wait_for_workers();
  void run_slice(int64_t n, int slices, int index);

  // The members are grouped by who writes them, a cache line per group, so that a hand-off moves as few lines
  // between cores as it can (a line took about 240 ns from one vCPU to the other on the Zen 5 VM): the job, written
  // by the caller and read by the workers; the count of unfinished slices, set by the caller before it publishes a
  // job, then counted down by the workers while the caller waits on it; the rest, written rarely. With job_word_ and pending_ on the line of mutex_, which the caller locked after
  // every job, a hand-off cost about twice a bare one (thread_pool_bench, docs/performance.md, session 46).

  // The current job. job_ and job_n_ are written by the caller before it publishes job_word_ and read only by
  // threads that take a slice of it; the caller does not write them again before all of those have finished.
  alignas(kCacheLine) const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  // generation << 16 | slices: one atomic load tells a worker both that there is a new job and whether it has a slice.
  std::atomic<uint64_t> job_word_{0};

  alignas(kCacheLine) std::atomic<int> pending_{0};  // worker slices of the current job not yet finished

  // The caller's own.
  alignas(kCacheLine) uint64_t generation_ = 0;  // jobs published
  LoadLooks load_looks_;                        // the looks at the machine's load (check_load)

  // Read by everyone, written rarely.
  alignas(kCacheLine) std::vector<std::thread> workers_;
  std::chrono::microseconds spin_{0};
  // steady_clock time (ns) before which nobody spins: set when a spinning thread finds it was descheduled.
  std::atomic<int64_t> no_spin_until_ns_{0};
  int hardware_threads_ = 1;
  std::atomic<bool> stopping_{false};
  // Blocking fallback: sleepers_ and caller_waiting_ say whether anyone needs a notify (the fast path takes no lock).
  std::atomic<int> sleepers_{0};
  std::atomic<bool> caller_waiting_{false};
  // Whether a slice threw (error_ is set): the caller takes the lock for error_ only then.
  std::atomic<bool> failed_{false};

  alignas(kCacheLine) std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  std::exception_ptr error_;  // guarded by mutex_
};

}  // namespace whale
