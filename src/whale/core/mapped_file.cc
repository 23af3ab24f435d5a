#include "whale/core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "whale/core/error.h"
#include "whale/core/thread_pool.h"

namespace whale {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kReadChunk = size_t{8} << 20;  // bytes per pread: large enough that the calls cost nothing

// MemAvailable of /proc/meminfo in bytes, or 0 if it cannot be read.
uint64_t memory_available() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream fields(line.substr(13));
    uint64_t kib = 0;
    return fields >> kib ? kib * 1024 : 0;
  }
  return 0;
}

// Asks the kernel to back [p, p + bytes) (2 MiB-aligned) with huge pages where faulting it in gave small ones. With the
// page cache filling memory (a model read from it after other large files were read), faults fall back to 4 KiB pages
// whenever compaction fails: reading the 10 GB BF16 bench checkpoint right after ik_llama.cpp's GGUF of it left 7.2-9.1
// GB of it in huge pages, and decode read 64-78% of the probe (Zen 5 VM, session 47). MADV_COLLAPSE (Linux 6.1)
// reclaims and compacts as needed and copies the rest into huge pages; ranges already huge cost a look. A call stops
// at the first page it cannot allocate, so it goes one huge page per call, in sweeps while they make progress (up to
// 16; each sweep over what is already huge is quick): 8.5-10.3 GB huge and 1.15x faster decode in 6 alternated
// rounds, the collapse taking under a second. Best effort: older kernels refuse it (EINVAL), and what
// cannot be collapsed stays as it is. Skipped where transparent huge pages are set to "never".
void collapse_to_huge_pages(uint8_t* p, size_t bytes, std::chrono::steady_clock::time_point deadline) {
#ifndef MADV_COLLAPSE
  constexpr int MADV_COLLAPSE = 25;
#endif
  // An administrator's "never" stands: MADV_COLLAPSE would override it.
  std::ifstream mode("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  if (std::getline(mode, modes) && modes.find("[never]") != std::string::npos) return;
  size_t left = bytes / kHugePage + 1;
  for (int sweep = 0; sweep < 16; ++sweep) {
    size_t failed = 0;
    for (size_t at = 0; at < bytes; at += kHugePage) {
      if (at % (64 * kHugePage) == 0 && std::chrono::steady_clock::now() > deadline) return;
      if (::madvise(p + at, std::min(kHugePage, bytes - at), MADV_COLLAPSE) == 0) continue;
      if (errno == EINVAL) return;  // not supported here
      ++failed;
    }
    if (failed == 0 || failed >= left) return;
    left = failed;
  }
}

}  // namespace

FileLoad parse_file_load(const std::string& name) {
  if (name == "auto") return FileLoad::Auto;
  if (name == "mmap") return FileLoad::Map;
  if (name == "read") return FileLoad::Read;
  fail("unknown load mode \"{}\" (expected auto, mmap or read)", name);
}

const char* file_load_name(FileLoad load) {
  switch (load) {
    case FileLoad::Auto: return "auto";
    case FileLoad::Map: return "mmap";
    case FileLoad::Read: return "read";
  }
  return "?";
}

FileLoad resolve_file_load(FileLoad load, uint64_t total_bytes) {
  if (load != FileLoad::Auto) return load;
  const uint64_t available = memory_available();
  return available > 0 && total_bytes <= available / 4 * 3 ? FileLoad::Read : FileLoad::Map;
}

MappedFile::MappedFile(const std::string& path, FileLoad load, const FileReadProgress& progress, uint64_t aligned_at)
    : path_(path), load_(load == FileLoad::Read ? FileLoad::Read : FileLoad::Map) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail("{}: cannot stat: {}", path, std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("{}: not a regular file", path);
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    return;
  }
  if (load_ == FileLoad::Map) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);  // the mapping keeps the file alive
    if (p == MAP_FAILED) fail("{}: cannot mmap: {}", path, std::strerror(err));
    // Pages this process faults in may then come as huge folios, where the kernel and file system allow it.
    ::madvise(p, size_, MADV_HUGEPAGE);
    region_ = p;
    region_size_ = size_;
    data_ = static_cast<const uint8_t*>(p);
    return;
  }
  // Read: a 2 MiB-aligned stretch of anonymous memory, so that every whole huge page of it can be one.
  region_size_ = size_ + kHugePage;
  region_ = ::mmap(nullptr, region_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region_ == MAP_FAILED) {
    const int err = errno;
    region_ = nullptr;
    ::close(fd);
    fail("{}: cannot allocate {} bytes to read it into: {}", path, size_, std::strerror(err));
  }
  // The region's slack (a huge page, less the mapping's page alignment) holds the shift of up to 63 bytes.
  auto* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(region_) + kHugePage - 1) & ~(kHugePage - 1));
  uint8_t* const aligned_base = base;
  const size_t huge_bytes = (size_ + 63 + kHugePage - 1) & ~(kHugePage - 1);
  ::madvise(base, huge_bytes, MADV_HUGEPAGE);
  base += (64 - aligned_at % 64) % 64;
  const auto read_start = std::chrono::steady_clock::now();
  try {
    read_parallel(fd, base, progress);
  } catch (...) {
    ::close(fd);
    ::munmap(region_, region_size_);
    region_ = nullptr;
    throw;
  }
  ::close(fd);
  // The collapse may take as long as the read did (at least half a second): where reclaim and compaction crawl, a
  // huge page more is not worth a load twice as long.
  const auto read_time = std::chrono::steady_clock::now() - read_start;
  // Whole huge pages of the mapping only: the last of huge_bytes may reach past its end.
  const auto* region_end = static_cast<const uint8_t*>(region_) + region_size_;
  const size_t whole = std::min(huge_bytes, static_cast<size_t>(region_end - aligned_base) / kHugePage * kHugePage);
  collapse_to_huge_pages(aligned_base, whole,
                         std::chrono::steady_clock::now() + std::max<std::chrono::steady_clock::duration>(
                                                                read_time, std::chrono::milliseconds(500)));
  ::mprotect(region_, region_size_, PROT_READ);  // read-only like the mapped file: a stray write faults
  data_ = base;
}

// The file into base[0, size_), in kReadChunk pieces claimed one at a time by the threads of a pool of its own (one
// per CPU, at most kMaxReaders), alive only for the read: weights are loaded before the engine's pool exists, and the
// readers wait on the kernel, not on arithmetic. On a VM whose host backs guest memory lazily, each huge page a reader
// touches first (the kernel zeroes it) waits on the host, and readers on both vCPUs of the test host halved a cold load
// (5.3 GB: 14-20 s with one reader, 7-9 s with two); from warm memory it takes about a second either way. Each
// finished piece reports the bytes finished so far, under a lock: one call at a time, each larger than the last. After
// a failed read the other readers claim no more pieces.
void MappedFile::read_parallel(int fd, uint8_t* base, const FileReadProgress& progress) {
  constexpr int kMaxReaders = 8;
  const int64_t pieces = static_cast<int64_t>((size_ + kReadChunk - 1) / kReadChunk);
  const int readers = static_cast<int>(
      std::clamp<int64_t>(std::min<int64_t>(std::thread::hardware_concurrency(), pieces), 1, kMaxReaders));
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex progress_mutex;
  size_t done = 0;
  auto read_pieces = [&](int64_t, int64_t) {
    for (size_t at; !failed.load(std::memory_order_relaxed) &&
                    (at = next.fetch_add(kReadChunk, std::memory_order_relaxed)) < size_;) {
      const size_t end = std::min(size_, at + kReadChunk);
      for (size_t pos = at; pos < end;) {
        const ssize_t n = ::pread(fd, base + pos, end - pos, static_cast<off_t>(pos));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) failed.store(true, std::memory_order_relaxed);
        if (n == 0) fail("{}: file ended at byte {} of {} while reading it (truncated meanwhile?)", path_, pos, size_);
        if (n < 0) fail("{}: read failed at byte {}: {}", path_, pos, std::strerror(errno));
        pos += static_cast<size_t>(n);
      }
      const std::lock_guard lock(progress_mutex);
      done += end - at;
      if (progress) progress(done);
    }
  };
  ThreadPool pool(readers, std::chrono::microseconds(0));
  pool.parallel_for(readers, read_pieces);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(other.data_),
      size_(other.size_),
      region_(other.region_),
      region_size_(other.region_size_),
      load_(other.load_) {
  other.data_ = nullptr;
  other.size_ = 0;
  other.region_ = nullptr;
  other.region_size_ = 0;
}

MappedFile::~MappedFile() {
  if (region_) ::munmap(region_, region_size_);
}

}  // namespace whale
