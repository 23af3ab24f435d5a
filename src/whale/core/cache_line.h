// Buffers that kernels read in whole cache lines: a load that straddles two lines costs two of L1's. A scratch buffer
// is allocated kCacheLine bytes longer than it needs and used from its first line boundary on (align_to_cache_line);
// a buffer that is copied or shared (the latent cache's pages) is an AlignedVector, whose storage starts on a boundary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace whale {

inline constexpr size_t kCacheLine = 64;

// The first address at or after p on a cache-line boundary. p must be aligned for T (as any element of a buffer of T
// is), so that the distance is a whole number of elements.
template <typename T>
T* align_to_cache_line(T* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  return reinterpret_cast<T*>((a + kCacheLine - 1) & ~uintptr_t{kCacheLine - 1});
}

// std::allocator's interface with storage from a cache-line boundary. Rows whose stride is a multiple of 64 bytes (the
// latent cache's 576 floats) each straddled lines the same way with malloc's 16-byte alignment: row_dots over such
// rows ran at about 66 G multiply-adds/s in cache against about 90 aligned (Zen 5, one thread).
template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}

  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kCacheLine})); }
  void deallocate(T* p, size_t) noexcept { ::operator delete(p, std::align_val_t{kCacheLine}); }

  template <typename U>
  bool operator==(const CacheLineAllocator<U>&) const noexcept {
    return true;
  }
};

template <typename T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

}  // namespace whale
