// keep_large_allocations_in_heap must change glibc's behaviour: a block of megabytes then comes from the heap, not
// from a fresh mmap (the pages a pass would otherwise fault in and zero again on every use).
#include "whale/core/heap_policy.h"

#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <gtest/gtest.h>

namespace whale {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitizedHeap = true;  // ASan replaces malloc; glibc's settings and counters do not apply
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitizedHeap = true;
#else
constexpr bool kSanitizedHeap = false;
#endif
#else
constexpr bool kSanitizedHeap = false;
#endif

// mallinfo2 is glibc 2.33's; elsewhere the test skips. (Nested, because a non-glibc preprocessor cannot parse
// __GLIBC_PREREQ(...) even behind a false `defined`.)
#if defined(__GLIBC__)
#if __GLIBC_PREREQ(2, 33)
#define WHALE_HAS_MALLINFO2 1
#endif
#endif

TEST(HeapPolicy, LargeBlocksComeFromTheHeap) {
#if defined(WHALE_HAS_MALLINFO2)
  if (kSanitizedHeap) GTEST_SKIP() << "the sanitizer's allocator replaces glibc's";
  constexpr size_t kBlock = size_t{48} << 20;  // above the most that glibc's own threshold grows to (32 MiB)
  // The default first: such a block is its own mapping (the check that the counter below sees mappings at all).
  const size_t before_default = mallinfo2().hblkhd;
  void* p = std::malloc(kBlock);
  ASSERT_NE(p, nullptr);
  const size_t with_default = mallinfo2().hblkhd;
  std::free(p);
  ASSERT_GE(with_default, before_default + kBlock) << "glibc mapped no block of 48 MiB by default";

  keep_large_allocations_in_heap();
  const size_t before = mallinfo2().hblkhd;
  p = std::malloc(kBlock);
  ASSERT_NE(p, nullptr);
  const size_t after = mallinfo2().hblkhd;
  std::free(p);
  EXPECT_EQ(after, before) << "a 48 MiB block was still mapped on its own after keep_large_allocations_in_heap";
#else
  GTEST_SKIP() << "glibc 2.33+ only (mallinfo2)";
#endif
}

}  // namespace
}  // namespace whale
