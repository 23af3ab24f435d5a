// PrefixCache on its own: which pages a prompt matches, what it keeps, what it drops first.
#include "whale/runtime/prefix_cache.h"

#include <vector>

#include <gtest/gtest.h>

#include "whale/core/error.h"

namespace whale {
namespace {

constexpr int kLayers = 2, kRank = 3, kRope = 1, kPage = 4;

// A cache holding tokens.size() tokens (contents unused here).
LatentKvCache filled(const std::vector<int32_t>& tokens) {
  LatentKvCache c(kLayers, kRank, kRope, 64, kPage);
  c.reserve(static_cast<int>(tokens.size()));
  c.commit(static_cast<int>(tokens.size()));
  return c;
}

std::vector<int32_t> seq(int n, int first) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(first + i);
  return t;
}

TEST(PrefixCache, MatchesWholePagesOfTheSameTokensOnly) {
  PrefixCache pc(kPage, 16);
  const std::vector<int32_t> a = seq(10, 100);  // 2 whole pages and 2 tokens
  const LatentKvCache ca = filled(a);
  pc.insert(a, ca);
  EXPECT_EQ(pc.pages(), 2u);
  auto m = pc.match(a);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0], ca.pages()[0]);
  EXPECT_EQ(m[1], ca.pages()[1]);
  // The same first page, then a different token: only the first page.
  std::vector<int32_t> b = a;
  b[5] = 7;
  EXPECT_EQ(pc.match(b).size(), 1u);
  // A page's tokens alone do not match after another first page.
  std::vector<int32_t> c = seq(4, 0);
  c.insert(c.end(), a.begin() + 4, a.end());
  EXPECT_EQ(pc.match(c).size(), 0u);
  EXPECT_EQ(pc.match(seq(3, 100)).size(), 0u);  // less than a page
  // Inserting again adds nothing; a longer sequence adds its new page.
  pc.insert(a, ca);
  EXPECT_EQ(pc.pages(), 2u);
  const std::vector<int32_t> longer = seq(12, 100);
  pc.insert(longer, filled(longer));
  EXPECT_EQ(pc.pages(), 3u);
  EXPECT_EQ(pc.match(longer)[0], ca.pages()[0]);  // the pages kept first stay
}

TEST(PrefixCache, DropsTheLeastRecentlyUsedLeavesBeyondItsBound) {
  PrefixCache pc(kPage, 3);
  const std::vector<int32_t> a = seq(8, 100), b = seq(8, 200);
  pc.insert(a, filled(a));
  pc.insert(b, filled(b));  // 4 pages: a's leaf (its second page) is the oldest leaf
  EXPECT_EQ(pc.pages(), 3u);
  EXPECT_EQ(pc.match(a).size(), 1u);
  EXPECT_EQ(pc.match(b).size(), 2u);
  pc.insert(seq(4, 300), filled(seq(4, 300)));  // a's first page is now the oldest leaf
  EXPECT_EQ(pc.match(a).size(), 0u);
  EXPECT_EQ(pc.match(b).size(), 2u);

  PrefixCache none(kPage, 0);
  none.insert(a, filled(a));
  EXPECT_EQ(none.pages(), 0u);
}

TEST(PrefixCache, RejectsMismatchedInput) {
  PrefixCache pc(kPage, 8);
  const std::vector<int32_t> a = seq(8, 100);
  LatentKvCache other(kLayers, kRank, kRope, 64, 8);
  other.reserve(8);
  other.commit(8);
  EXPECT_THROW(pc.insert(a, other), Error);  // another page size
  EXPECT_THROW(pc.insert(seq(5, 100), filled(a)), Error);  // fewer tokens than the cache holds
  EXPECT_THROW(PrefixCache(0, 8), Error);
}

}  // namespace
}  // namespace whale
