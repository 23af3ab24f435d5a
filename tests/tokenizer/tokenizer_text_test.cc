// Unit tests of the tokenizer's text building blocks, with expected values derived by hand from the specifications
// they implement: the WHATWG Encoding Standard's UTF-8 decoder (one U+FFFD per maximal subpart of an ill-formed
// sequence, Unicode §3.9 "U+FFFD Substitution of Maximal Subparts"), GPT-2's byte-to-unicode alphabet, and Hugging
// Face tokenizers' SplitDelimiterBehavior.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "whale/core/error.h"
#include "whale/tokenizer/byte_level.h"
#include "whale/tokenizer/pre_tokenizer.h"
#include "whale/tokenizer/utf8.h"

namespace whale {
namespace {

const std::string kFFFD = "\xEF\xBF\xBD";

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
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

}  // namespace
}  // namespace whale
