#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "whale/runtime/generator.h"

namespace whale {
namespace {

TEST(PartialMatch, LongestProperPrefixAtTheEnd) {
  EXPECT_EQ(partial_match_length("hello </th", "</think>"), 4u);
  EXPECT_EQ(partial_match_length("hello <", "</think>"), 1u);
  EXPECT_EQ(partial_match_length("hello", "</think>"), 0u);
  EXPECT_EQ(partial_match_length("</think>", "</think>"), 0u);  // complete matches are not partial
  EXPECT_EQ(partial_match_length("aaa", "aab"), 2u);
  EXPECT_EQ(partial_match_length("", "x"), 0u);
  EXPECT_EQ(partial_match_length("abc", ""), 0u);
}

// Feeds pieces and returns the concatenated released text and whether a stop matched.
std::pair<std::string, bool> feed(std::vector<std::string> stops, const std::vector<std::string>& pieces) {
  StopStringFilter f(std::move(stops));
  std::string out;
  for (const auto& p : pieces) out += f.push(p);
  out += f.flush();
  return {out, f.matched()};
}

TEST(StopStringFilter, StopsBeforeAStopSplitAcrossPieces) {
  EXPECT_EQ(feed({"STOP"}, {"abc S", "TO", "P tail"}), std::make_pair(std::string("abc "), true));
  EXPECT_EQ(feed({"\n\n", "END"}, {"a\n", "b", "E", "ND"}), std::make_pair(std::string("a\nb"), true));
}

TEST(StopStringFilter, EarliestStopWins) {
  EXPECT_EQ(feed({"cd", "b"}, {"abcd"}), std::make_pair(std::string("a"), true));
}

TEST(StopStringFilter, HeldBackTextIsReleasedWhenItCannotMatch) {
  StopStringFilter f({"STOP"});
  EXPECT_EQ(f.push("xx ST"), "xx ");
  EXPECT_EQ(f.push("ART"), "START");
  EXPECT_FALSE(f.matched());
  EXPECT_EQ(feed({"STOP"}, {"the end ST"}), std::make_pair(std::string("the end ST"), false));
}

TEST(StopStringFilter, NoStopsPassEverything) {
  EXPECT_EQ(feed({}, {"a", "b"}), std::make_pair(std::string("ab"), false));
}

}  // namespace
}  // namespace whale
