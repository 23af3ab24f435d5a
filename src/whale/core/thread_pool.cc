#include "whale/core/thread_pool.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "whale/core/error.h"

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
#include <immintrin.h>
#endif

namespace whale {
namespace {

constexpr int kSliceBits = 16;
constexpr uint64_t kSliceMask = (uint64_t{1} << kSliceBits) - 1;
constexpr int kMaxThreads = static_cast<int>(kSliceMask);

// Tells the core this is a spin-wait loop: less power, and the sibling hyperthread gets the pipeline.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
  _mm_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield" ::: "memory");
#else
  std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
}

// Slice s of n split into `slices` nearly equal contiguous parts.
std::pair<int64_t, int64_t> slice_bounds(int64_t n, int slices, int s) {
  const int64_t base = n / slices, extra = n % slices;
  const int64_t begin = s * base + std::min<int64_t>(s, extra);
  return {begin, begin + base + (s < extra ? 1 : 0)};
}

// Runnable threads on the whole machine, running ones included (/proc/loadavg's fourth field, "R/T"); -1 if unknown.
int runnable_threads() {
  const int fd = ::open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[128];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  double load[3];
  int running = -1, total = 0;
  return std::sscanf(buf, "%lf %lf %lf %d/%d", &load[0], &load[1], &load[2], &running, &total) == 5 ? running : -1;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// Spins until done() is true or the spin budget has passed; returns done()'s last value. The clock is read every
// kSpinsPerClockRead pauses only (a pause is ~10-150 cycles depending on the CPU). After kPureSpin the loop also yields
// the core between rounds, for the case where the thread being waited for needs this very core.
//
// Spinning only pays when every thread of the pool has a core to itself. On a machine with more runnable threads than
// cores (other processes, tests in parallel) a spinning thread uses up its share of the CPU and is then scheduled
// after the threads that slept, so hand-offs get slower than with blocking. Two signs of that stop the pool spinning
// for a while, so that every wait blocks at once, as a pool without spinning would: a gap between two clock reads of
// the loop (the thread was descheduled, or a yield ran another task), and, checked by the caller every
// kLoadCheckInterval (check_load), more runnable threads on the machine than CPUs left for the pool.
template <typename Done>
bool ThreadPool::spin_until(Done done) {
  if (done()) return true;
  if (spin_.count() <= 0) return false;
  constexpr int kSpinsPerClockRead = 16;
  // A thread that lost its core to another runnable one waits out that one's time slice (a millisecond or more);
  // shorter gaps are interrupts, kernel threads and, in a VM, the hypervisor. A 2-vCPU VM showed ~150 gaps of 50-100 us
  // a second and almost none over 500 us: with kPreempted at 50 us the pool stopped spinning about half of the time
  // there, and a hand-off took ~25 us instead of ~1 (thread_pool_bench Empty/2/200: 4.2-6.2 us -> 0.9-1.2 us, Spaced
  // 24-31 us -> 5.4 us).
  constexpr int64_t kPureSpin = 100'000, kPreempted = 500'000, kContendedPause = 50'000'000;  // ns
  const int64_t start = now_ns();
  if (start < no_spin_until_ns_.load(std::memory_order_relaxed)) return false;
  const int64_t deadline = start + std::chrono::duration_cast<std::chrono::nanoseconds>(spin_).count();
  int64_t last = start;
  for (;;) {
    for (int i = 0; i < kSpinsPerClockRead; ++i) {
      cpu_relax();
      if (done()) return true;
    }
    const int64_t now = now_ns();
    if (now - last > kPreempted) {
      no_spin_until_ns_.store(now + kContendedPause, std::memory_order_relaxed);
      return done();
    }
    if (now >= deadline) return done();
    if (now - start >= kPureSpin) std::this_thread::yield();
    last = now;
  }
}

ThreadPool::ThreadPool(int n_threads, std::chrono::microseconds spin) {
  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (n_threads <= 0) n_threads = hardware;
  if (n_threads > kMaxThreads) fail("thread pool: {} threads requested, at most {}", n_threads, kMaxThreads);
  // Spinning needs a core per thread among those this process may run on (taskset, cgroup cpusets).
  cpu_set_t allowed;
  hardware_threads_ = sched_getaffinity(0, sizeof allowed, &allowed) == 0 ? std::max(1, CPU_COUNT(&allowed)) : hardware;
  spin_ = (n_threads > 1 && n_threads <= hardware_threads_) ? std::max(spin, std::chrono::microseconds(0))
                                                   : std::chrono::microseconds(0);
  workers_.reserve(n_threads - 1);
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stopping_.store(true, std::memory_order_seq_cst);
  { std::lock_guard lock(mutex_); }  // a worker between its last check and its wait is now waiting
  work_ready_.notify_all();
  for (auto& t : workers_) t.join();
}

// A false alarm cost a lot: on the 2-vCPU Zen 5 VM a blocking hand-off took about 24 µs against 0.7 spinning, and a
// decode step makes about 180 hand-offs per token, so each 100 ms of blocking after a single look's excess slowed decode
// by about a sixth while it lasted (such looks came 0-6 times per 64-token run, session 54). A machine really busy
// keeps its excess from one look to the next.
bool LoadLooks::record(bool excess, int64_t now_ns) {
  if (!excess) {
    in_a_row_ = 0;
    next_look_ns_ = now_ns + kIntervalNs;
    return false;
  }
  if (++in_a_row_ < kLooks) {
    next_look_ns_ = now_ns + kRecheckNs;
    return false;
  }
  in_a_row_ = 0;
  next_look_ns_ = now_ns + kIntervalNs;
  return true;
}

void ThreadPool::check_load() {
  const int64_t now = now_ns();
  if (now < load_looks_.next_look_ns()) return;
  const int runnable = runnable_threads();
  if (runnable < 0) {
    load_looks_.record(false, now);
    return;
  }
  // The pool's own threads that count as runnable now: the caller and every worker not blocked.
  const int ours = size() - sleepers_.load(std::memory_order_relaxed);
  if (load_looks_.record(runnable - ours + size() > hardware_threads_, now))
    no_spin_until_ns_.store(
        std::max(no_spin_until_ns_.load(std::memory_order_relaxed), now + LoadLooks::kIntervalNs),
        std::memory_order_relaxed);
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
  if (n <= 0) return;
  const int slices = static_cast<int>(std::clamp<int64_t>(n / std::max<int64_t>(grain, 1), 1, size()));
  if (slices == 1) {
    fn(0, n);
    return;
  }
  if (spin_.count() > 0) check_load();
  // Every worker that took a slice of the previous job has finished it (pending_ reached 0), and workers without a
  // slice never read job_ or job_n_, so these plain writes race with nothing.
  job_ = &fn;
  job_n_ = n;
  pending_.store(slices - 1, std::memory_order_relaxed);
  ++generation_;
  // seq_cst store, then seq_cst load of sleepers_: pairs with the worker's increment of sleepers_ and re-check of
  // job_word_ (wait_for_job), so either the worker sees the job or this thread sees the sleeper.
  job_word_.store(generation_ << kSliceBits | static_cast<uint64_t>(slices), std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    { std::lock_guard lock(mutex_); }
    work_ready_.notify_all();
  }
  run_slice(n, slices, 0);
  wait_for_workers();
  job_ = nullptr;
  // pending_ reached 0 after every slice's failed_ store (seq_cst decrement, acquire load; the caller's own slice ran
  // here), so a relaxed load sees it.
  if (!failed_.load(std::memory_order_relaxed)) return;
  std::exception_ptr error;
  {
    std::lock_guard lock(mutex_);
    error = std::exchange(error_, nullptr);
    failed_.store(false, std::memory_order_relaxed);
  }
  std::rethrow_exception(error);
}

void ThreadPool::wait_for_workers() {
  if (spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; })) return;
  std::unique_lock lock(mutex_);
  caller_waiting_.store(true, std::memory_order_seq_cst);
  work_done_.wait(lock, [this] { return pending_.load(std::memory_order_seq_cst) == 0; });
  caller_waiting_.store(false, std::memory_order_relaxed);
}

void ThreadPool::run_slice(int64_t n, int slices, int index) {
  const auto [b, e] = slice_bounds(n, slices, index);
  try {
    (*job_)(b, e);
  } catch (...) {
    std::lock_guard lock(mutex_);
    if (!error_) error_ = std::current_exception();
    failed_.store(true, std::memory_order_relaxed);
  }
}

uint64_t ThreadPool::wait_for_job(uint64_t seen) {
  uint64_t word = seen;
  const auto ready = [&] {
    word = job_word_.load(std::memory_order_acquire);
    return word != seen || stopping_.load(std::memory_order_relaxed);
  };
  if (spin_until(ready)) return word;
  std::unique_lock lock(mutex_);
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  work_ready_.wait(lock, [&] {
    word = job_word_.load(std::memory_order_seq_cst);
    return word != seen || stopping_.load(std::memory_order_seq_cst);
  });
  sleepers_.fetch_sub(1, std::memory_order_relaxed);
  return word;
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    const uint64_t word = wait_for_job(seen);
    if (stopping_.load(std::memory_order_acquire)) return;
    seen = word;
    const int slices = static_cast<int>(word & kSliceMask);
    if (index >= slices) continue;  // no slice of this job: job_ and job_n_ may already belong to the next one
    run_slice(job_n_, slices, index);
    // seq_cst: pairs with the caller's store of caller_waiting_ and its re-check of pending_ (wait_for_workers).
    if (pending_.fetch_sub(1, std::memory_order_seq_cst) == 1 && caller_waiting_.load(std::memory_order_seq_cst)) {
      { std::lock_guard lock(mutex_); }
      work_done_.notify_one();
    }
  }
}

}  // namespace whale
