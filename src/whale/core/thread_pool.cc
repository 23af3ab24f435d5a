#include "whale/core/thread_pool.h"

#include <algorithm>
#include <utility>

namespace whale {
namespace {

// Slice s of n split into `slices` nearly equal contiguous parts.
std::pair<int64_t, int64_t> slice_bounds(int64_t n, int slices, int s) {
  const int64_t base = n / slices, extra = n % slices;
  const int64_t begin = s * base + std::min<int64_t>(s, extra);
  return {begin, begin + base + (s < extra ? 1 : 0)};
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = std::max(1u, std::thread::hardware_concurrency());
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain) {
  if (n <= 0) return;
  const int slices = static_cast<int>(std::clamp<int64_t>(n / std::max<int64_t>(grain, 1), 1, size()));
  if (slices == 1) {
    fn(0, n);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    job_ = &fn;
    job_n_ = n;
    job_slices_ = slices;
    pending_ = slices - 1;
    ++generation_;
  }
  work_ready_.notify_all();
  run_slice(n, slices, 0);
  std::unique_lock lock(mutex_);
  work_done_.wait(lock, [this] { return pending_ == 0; });
  job_ = nullptr;
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void ThreadPool::run_slice(int64_t n, int slices, int index) {
  const auto [b, e] = slice_bounds(n, slices, index);
  try {
    (*job_)(b, e);
  } catch (...) {
    std::lock_guard lock(mutex_);
    if (!error_) error_ = std::current_exception();
  }
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    int64_t n;
    int slices;
    {
      std::unique_lock lock(mutex_);
      work_ready_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      n = job_n_;
      slices = job_slices_;
    }
    if (index < slices) {
      run_slice(n, slices, index);
      std::lock_guard lock(mutex_);
      if (--pending_ == 0) work_done_.notify_one();
    }
  }
}

}  // namespace whale
