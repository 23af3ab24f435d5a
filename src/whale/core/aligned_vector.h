// A std::vector whose storage starts on a cache-line boundary, for rows that SIMD kernels read a whole vector at a
// time: a 64-byte load that straddles two cache lines costs two L1 accesses. With malloc's 16-byte alignment every row
// of a buffer whose row stride is a multiple of 64 bytes (the latent cache's 576 floats) straddled the same way:
// row_dots over such rows ran at about 66 G multiply-adds/s in cache against about 90 aligned (Zen 5, one thread).
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace whale {

inline constexpr size_t kCacheLineBytes = 64;

template <typename T, size_t Alignment = kCacheLineBytes>
struct AlignedAllocator {
  using value_type = T;
  template <typename U>
  struct rebind {
    using other = AlignedAllocator<U, Alignment>;
  };
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U, Alignment>&) noexcept {}

  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{Alignment})); }
  void deallocate(T* p, size_t) noexcept { ::operator delete(p, std::align_val_t{Alignment}); }

  template <typename U>
  bool operator==(const AlignedAllocator<U, Alignment>&) const noexcept {
    return true;
  }
};

template <typename T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

}  // namespace whale
