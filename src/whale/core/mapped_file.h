// A whole file in memory, read-only: either mapped from the page cache, or read into anonymous memory backed by
// transparent huge pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace whale {

// How a file's bytes come into memory.
//  Map:  mmap of the file. Nothing is copied and loading is instant, but the pages are whatever the page cache holds:
//        often 4 KiB ones, and streaming gigabytes through them costs a TLB miss per page (in a virtual machine a
//        two-level page walk), which on some hosts halves decode speed.
//  Read: the file is read into anonymous memory advised for 2 MiB transparent huge pages (about 1 s for 10 GB held
//        in the page cache), at the price of a private copy.
//  Auto: Read when all the files of a load fit in the memory available with room to spare, else Map.
enum class FileLoad { Auto, Map, Read };

// "auto", "mmap", "read" ↔ FileLoad; parse_file_load throws Error for any other name.
FileLoad parse_file_load(const std::string& name);
const char* file_load_name(FileLoad load);

// What Auto means for `total_bytes` of files on this machine now: Read if they fit in 3/4 of the memory available
// (MemAvailable of /proc/meminfo), else Map (also when that cannot be read).
FileLoad resolve_file_load(FileLoad load, uint64_t total_bytes);

// Called as reading advances: bytes read so far (of this file). Reading runs on several threads: the calls may come
// from any of them, one at a time, each with a larger count than the last, the last with the file's size.
using FileReadProgress = std::function<void(uint64_t done)>;

class MappedFile {
 public:
  // Brings `path` into memory as `load` says (Auto is taken as Map here: resolve it first); throws Error naming the
  // path if it cannot be opened, mapped or read. Read places the file so that its byte `aligned_at` lands on a 64-byte
  // boundary (a safetensors file's data buffer, so that tensors whose offsets are multiples of 64 start on a cache
  // line and no vector load of theirs straddles two); a mapping starts where the page cache has the file.
  explicit MappedFile(const std::string& path, FileLoad load = FileLoad::Map,
                      const FileReadProgress& progress = nullptr, uint64_t aligned_at = 0);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&&) = delete;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Map or Read: how the bytes came in.
  FileLoad load() const { return load_; }
  // The memory that holds the file: a mapping, or Read's region with its slack ({0, 0} for an empty file).
  std::pair<uintptr_t, uintptr_t> memory() const {
    const auto begin = reinterpret_cast<uintptr_t>(region_);
    return {begin, begin + region_size_};
  }

 private:
  // Reads the whole file into base over a few threads (Read mode); throws naming the file on a short or failed read.
  void read_parallel(int fd, uint8_t* base, const FileReadProgress& progress);
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  void* region_ = nullptr;  // what munmap releases, and its length
  size_t region_size_ = 0;
  FileLoad load_ = FileLoad::Map;
};

}  // namespace whale
