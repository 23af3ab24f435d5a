// Scratch buffers that kernels read in whole cache lines: a load that straddles two lines costs two of L1's, so a
// buffer is allocated kCacheLine bytes longer than it needs and used from its first line boundary on.
#pragma once

#include <cstddef>
#include <cstdint>

namespace whale {

inline constexpr size_t kCacheLine = 64;

// The first address at or after p on a cache-line boundary. p must be aligned for T (as any element of a buffer of T
// is), so that the distance is a whole number of elements.
template <typename T>
T* align_to_cache_line(T* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  return reinterpret_cast<T*>((a + kCacheLine - 1) & ~uintptr_t{kCacheLine - 1});
}

}  // namespace whale
