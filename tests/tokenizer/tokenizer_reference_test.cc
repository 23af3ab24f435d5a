// whale's tokenizer against the reference ids of tests/tokenizer/reference_ids.mjs (transformers.js and Hugging
// Face's Rust tokenizers on the corpus of tests/tokenizer/make_corpus.mjs).
//
//   node tests/tokenizer/make_corpus.mjs build/tokenizer/corpus.json
//   node tests/tokenizer/reference_ids.mjs --tokenizer DIR --corpus build/tokenizer/corpus.json
//        --out build/tokenizer/expected.json
//   WHALE_TOKENIZER_DIR=DIR WHALE_TOKENIZER_EXPECTED=build/tokenizer/expected.json
//        build/release/tests/whale_tests --gtest_filter='TokenizerReference.*'
//
// Without both variables the tests are skipped.
//
// Which ids are right: where transformers.js and the Rust library agree (99+% of the corpus), whale must give
// those ids. Where they disagree, either is accepted and the case is counted as disputed; the known causes are
// JavaScript's \s (which includes U+FEFF and excludes U+0085, unlike Unicode White_Space used by the Rust
// library's Oniguruma regexes) and the Rust library's NFC tables, older than Unicode 14 (it leaves combining marks
// added since unordered). WHALE_TOKENIZER_REFERENCE=transformers_js or =hf makes one reference the only one.
//
// Optional: WHALE_TOKENIZER_MAX_REPORTS=N (default 10) bounds the failures printed in full per test;
// WHALE_TOKENIZER_DUMP=FILE writes whale's ids of every case to FILE (a JSON array of arrays, in corpus order).

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "whale/tokenizer/tokenizer.h"
#include "whale/tokenizer/utf8.h"

namespace whale {
namespace {

using Ids = std::vector<int32_t>;

struct Case {
  std::string category, text, decoded;
  Ids ids, hf_ids;
};

struct DecodeCase {
  Ids ids;
  std::string decoded, hf_decoded, decoded_skip, hf_decoded_skip;
};

struct Expected {
  nlohmann::json meta;
  std::vector<Case> cases;
  std::vector<DecodeCase> decode_cases;
};

// Text for messages: printable ASCII and visible non-ASCII characters as they are; controls, spaces other than
// ' ', format characters, combining marks and invalid bytes escaped.
bool invisible(char32_t c) {
  return c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD || (c >= 0x300 && c <= 0x36F) || c == 0x34F ||
         c == 0x61C || c == 0x115F || c == 0x1160 || c == 0x1680 || c == 0x180E || (c >= 0x2000 && c <= 0x200F) ||
         (c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x206F) || c == 0x3000 || c == 0x3164 ||
         (c >= 0xFE00 && c <= 0xFE0F) || c == 0xFEFF || (c >= 0xFFF0 && c <= 0xFFFB) || (c >= 0xE0000 && c <= 0xE0FFF);
}

std::string escape(std::string_view s, size_t max_bytes = 400) {
  std::string out = "\"";
  char buf[32];
  size_t i = 0;
  while (i < s.size()) {
    if (i >= max_bytes) {
      std::snprintf(buf, sizeof buf, "%zu", s.size() - i);
      out += std::string("\"… (") + buf + " more bytes)";
      return out;
    }
    const unsigned char b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      switch (b) {
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        default:
          if (b < 0x20 || b == 0x7F) {
            std::snprintf(buf, sizeof buf, "\\x%02X", b);
            out += buf;
          } else {
            out += static_cast<char>(b);
          }
      }
      ++i;
      continue;
    }
    // One valid UTF-8 sequence, or an invalid byte.
    const size_t rest = utf8_invalid_offset(s.substr(i, std::min<size_t>(4, s.size() - i)));
    const size_t len = utf8_sequence_length(b);
    if (len > 1 && i + len <= s.size() && (rest == std::string_view::npos || rest >= len)) {
      size_t j = i;
      const char32_t c = utf8_next(s, j);
      if (invisible(c)) {
        std::snprintf(buf, sizeof buf, "\\u{%X}", static_cast<unsigned>(c));
        out += buf;
      } else {
        out.append(s.substr(i, len));
      }
      i += len;
    } else {
      std::snprintf(buf, sizeof buf, "\\x%02X", b);
      out += buf;
      ++i;
    }
  }
  return out + "\"";
}

std::string show_ids(const Tokenizer& t, const Ids& ids, size_t from, size_t to) {
  std::ostringstream os;
  os << "[";
  if (from > 0) os << "… ";
  for (size_t i = from; i < std::min(to, ids.size()); ++i) {
    os << ids[i];
    try {
      os << ":" << escape(t.token_bytes(ids[i]), 64);
    } catch (const std::exception&) {
      os << ":<not in the vocabulary>";
    }
    if (i + 1 < std::min(to, ids.size())) os << " ";
  }
  if (to < ids.size()) os << " …";
  os << "] (" << ids.size() << " ids)";
  return os.str();
}

size_t first_difference(const Ids& a, const Ids& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return i;
}

Ids ids_of(const nlohmann::json& j) {
  Ids out;
  out.reserve(j.size());
  for (const auto& v : j) out.push_back(v.get<int32_t>());
  return out;
}

int max_reports() {
  const char* v = std::getenv("WHALE_TOKENIZER_MAX_REPORTS");
  return v && *v ? std::atoi(v) : 10;
}

// Failures per category, printed as "category N of M, ...".
struct Tally {
  std::map<std::string, std::pair<size_t, size_t>> by_category;  // failures, cases
  size_t failures = 0, total = 0;
  void add(const std::string& category, bool failed) {
    auto& [f, n] = by_category[category];
    ++n;
    ++total;
    if (failed) ++f, ++failures;
  }
  std::string summary() const {
    std::ostringstream os;
    os << failures << " of " << total << " cases";
    bool first = true;
    for (const auto& [cat, fn] : by_category)
      if (fn.first) os << (first ? " (" : ", ") << cat << " " << fn.first << " of " << fn.second, first = false;
    if (!first) os << ")";
    return os.str();
  }
};

class TokenizerReference : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* dir = std::getenv("WHALE_TOKENIZER_DIR");
    const char* expected = std::getenv("WHALE_TOKENIZER_EXPECTED");
    if (!dir || !*dir || !expected || !*expected) {
      skip_reason_ =
          "set WHALE_TOKENIZER_DIR (tokenizer.json + tokenizer_config.json) and WHALE_TOKENIZER_EXPECTED (the output "
          "of tests/tokenizer/reference_ids.mjs for that tokenizer) to compare with the reference tokenizers";
      return;
    }
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::load(dir));
    std::ifstream in(expected, std::ios::binary);
    if (!in) {
      load_error_ = std::string(expected) + ": cannot open";
      return;
    }
    const nlohmann::json j = nlohmann::json::parse(in);
    expected_ = std::make_unique<Expected>();
    expected_->meta = j.at("meta");
    for (const auto& c : j.at("cases"))
      expected_->cases.push_back({c.at("category").get<std::string>(), c.at("text").get<std::string>(),
                                  c.at("decoded").get<std::string>(), ids_of(c.at("ids")), ids_of(c.at("hf_ids"))});
    for (const auto& d : j.at("decode_cases"))
      expected_->decode_cases.push_back({ids_of(d.at("ids")), d.at("decoded").get<std::string>(),
                                         d.at("hf_decoded").get<std::string>(), d.at("decoded_skip").get<std::string>(),
                                         d.at("hf_decoded_skip").get<std::string>()});
    const char* ref = std::getenv("WHALE_TOKENIZER_REFERENCE");
    const std::string_view r = ref ? ref : "";
    if (r == "hf") reference_ = Reference::Hf;
    else if (r == "transformers_js") reference_ = Reference::TransformersJs;
    else if (!r.empty() && r != "either") {
      load_error_ = "WHALE_TOKENIZER_REFERENCE must be transformers_js, hf or either";
      return;
    }
    // Whale's own ids, shared by the tests below.
    whale_ids_ = std::make_unique<std::vector<Ids>>();
    whale_ids_->reserve(expected_->cases.size());
    for (const Case& c : expected_->cases) {
      try {
        whale_ids_->push_back(tokenizer_->encode(c.text, false));
      } catch (const std::exception& e) {
        std::cerr << "encode threw for " << escape(c.text) << ": " << e.what() << "\n";
        whale_ids_->push_back({-1});
      }
    }
    if (const char* dump = std::getenv("WHALE_TOKENIZER_DUMP"); dump && *dump) {
      std::ofstream out(dump, std::ios::binary);
      out << nlohmann::json(*whale_ids_).dump() << "\n";
    }
    std::cout << "[ reference ] " << expected << ": " << expected_->cases.size() << " cases, "
              << expected_->decode_cases.size() << " decode cases; tokenizer " << dir << "; reference: "
              << (reference_ == Reference::Hf               ? "Hugging Face tokenizers (Rust)"
                  : reference_ == Reference::TransformersJs ? "transformers.js"
                                                            : "transformers.js and tokenizers (either where they disagree)")
              << "\n";
  }
  static void TearDownTestSuite() {
    tokenizer_.reset();
    expected_.reset();
    whale_ids_.reset();
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(load_error_.empty()) << load_error_;
    ASSERT_TRUE(tokenizer_ && expected_);
  }

  enum class Reference { Either, TransformersJs, Hf };
  // Whether whale's ids are acceptable for case c.
  static bool accepted(const Case& c, const Ids& got) {
    switch (reference_) {
      case Reference::TransformersJs: return got == c.ids;
      case Reference::Hf: return got == c.hf_ids;
      case Reference::Either: break;
    }
    return got == c.ids || got == c.hf_ids;
  }
  // The ids to show next to whale's on a failure.
  static const Ids& shown_reference(const Case& c) { return reference_ == Reference::Hf ? c.hf_ids : c.ids; }

  static inline std::string skip_reason_, load_error_;
  static inline std::unique_ptr<Tokenizer> tokenizer_;
  static inline std::unique_ptr<Expected> expected_;
  static inline std::unique_ptr<std::vector<Ids>> whale_ids_;
  static inline Reference reference_ = Reference::Either;
};

TEST_F(TokenizerReference, EncodeMatchesReference) {
  const Tokenizer& t = *tokenizer_;
  Tally tally;
  size_t same_tjs = 0, same_hf = 0, refs_agree = 0, neither = 0;
  int reported = 0;
  const int max = max_reports();
  for (size_t i = 0; i < expected_->cases.size(); ++i) {
    const Case& c = expected_->cases[i];
    const Ids& got = (*whale_ids_)[i];
    same_tjs += got == c.ids;
    same_hf += got == c.hf_ids;
    refs_agree += c.ids == c.hf_ids;
    neither += got != c.ids && got != c.hf_ids;
    const bool failed = !accepted(c, got);
    tally.add(c.category, failed);
    if (failed && reported++ < max) {
      std::ostringstream msg;
      msg << "[" << c.category << "] case " << i << ": " << escape(c.text);
      const auto show = [&](const char* name, const Ids& want) {
        const size_t at = first_difference(got, want);
        const size_t from = at > 3 ? at - 3 : 0;
        msg << "\n  first difference from " << name << " at id " << at << "\n    whale:      "
            << show_ids(t, got, from, at + 5) << "\n    " << name << ": " << show_ids(t, want, from, at + 5);
      };
      if (c.ids == c.hf_ids || reference_ != Reference::Either) {
        show(reference_ == Reference::Hf ? "tokenizers" : "transformers.js", shown_reference(c));
        if (c.ids != c.hf_ids)
          msg << "\n  (the references disagree on this case"
              << (got == (reference_ == Reference::Hf ? c.ids : c.hf_ids) ? "; whale matches the other one)" : ")");
      } else {
        show("transformers.js", c.ids);
        show("tokenizers", c.hf_ids);
      }
      ADD_FAILURE() << msg.str();
    }
  }
  const size_t n = expected_->cases.size();
  std::cout << "[ reference ] whale == transformers.js: " << same_tjs << " of " << n << "; whale == tokenizers (Rust): "
            << same_hf << " of " << n << "; transformers.js == tokenizers: " << refs_agree << " of " << n
            << " (disputed: " << n - refs_agree << "); whale matches neither: " << neither << "\n";
  if (tally.failures) ADD_FAILURE() << "whale's ids differ from the reference's on " << tally.summary();
}

TEST_F(TokenizerReference, RoundTrip) {
  const Tokenizer& t = *tokenizer_;
  const bool exact = expected_->meta.value("roundtrip_exact", true);
  Tally tally;
  int reported = 0;
  const int max = max_reports();
  for (size_t i = 0; i < expected_->cases.size(); ++i) {
    const Case& c = expected_->cases[i];
    // With a normalizer (NFC) the round trip gives the normalized text: the reference's decode of its ids.
    const std::string& want = exact ? c.text : c.decoded;
    std::string got;
    try {
      got = t.decode((*whale_ids_)[i], false, false);
    } catch (const std::exception& e) {
      got = std::string("<decode threw: ") + e.what() + ">";
    }
    const bool failed = got != want;
    tally.add(c.category, failed);
    if (failed && reported++ < max)
      ADD_FAILURE() << "[" << c.category << "] case " << i << ": decode(encode(x)) != "
                    << (exact ? "x" : "the reference's decode") << "\n  x:        " << escape(c.text)
                    << "\n  want:     " << escape(want) << "\n  got:      " << escape(got);
  }
  if (tally.failures) ADD_FAILURE() << "round trip fails on " << tally.summary();
}

// Streams ids through StreamingDecoder: every chunk must be valid UTF-8 and all of them together the one-shot
// decode. Returns an error message, or "" on success.
std::string check_streaming(const Tokenizer& t, const Ids& ids, bool skip_special, const std::string& one_shot) {
  StreamingDecoder d(t, skip_special);
  std::string all;
  for (size_t k = 0; k < ids.size(); ++k) {
    const std::string chunk = d.push(ids[k]);
    if (utf8_invalid_offset(chunk) != std::string_view::npos)
      return "push of id " + std::to_string(ids[k]) + " (position " + std::to_string(k) +
             ") returned invalid UTF-8: " + escape(chunk);
    all += chunk;
  }
  const std::string tail = d.finish();
  if (utf8_invalid_offset(tail) != std::string_view::npos) return "finish() returned invalid UTF-8: " + escape(tail);
  all += tail;
  if (all != one_shot) return "streamed " + escape(all) + " but the one-shot decode is " + escape(one_shot);
  return "";
}

TEST_F(TokenizerReference, StreamingDecodeOfCorpus) {
  const Tokenizer& t = *tokenizer_;
  Tally tally;
  int reported = 0;
  const int max = max_reports();
  for (size_t i = 0; i < expected_->cases.size(); ++i) {
    const Case& c = expected_->cases[i];
    const Ids& ids = (*whale_ids_)[i];
    std::string error;
    try {
      error = check_streaming(t, ids, false, t.decode(ids, false, false));
    } catch (const std::exception& e) {
      error = std::string("threw: ") + e.what();
    }
    tally.add(c.category, !error.empty());
    if (!error.empty() && reported++ < max)
      ADD_FAILURE() << "[" << c.category << "] case " << i << " " << escape(c.text) << ": " << error;
  }
  if (tally.failures) ADD_FAILURE() << "streaming decode fails on " << tally.summary();
}

TEST_F(TokenizerReference, DecodeCases) {
  const Tokenizer& t = *tokenizer_;
  size_t failures = 0, same_hf = 0, refs_agree = 0, stream_failures = 0;
  int reported = 0;
  const int max = max_reports();
  const auto& cases = expected_->decode_cases;
  for (size_t i = 0; i < cases.size(); ++i) {
    const DecodeCase& d = cases[i];
    std::string got, got_skip;
    try {
      got = t.decode(d.ids, false, false);
      got_skip = t.decode(d.ids, true, false);
    } catch (const std::exception& e) {
      got = got_skip = std::string("<decode threw: ") + e.what() + ">";
    }
    same_hf += got == d.hf_decoded;
    refs_agree += d.decoded == d.hf_decoded;
    const bool either = reference_ == Reference::Either;
    const bool hf = reference_ == Reference::Hf;
    const bool ok = ((!hf && got == d.decoded) || ((hf || either) && got == d.hf_decoded)) &&
                    ((!hf && got_skip == d.decoded_skip) || ((hf || either) && got_skip == d.hf_decoded_skip));
    const bool failed = !ok;
    failures += failed;
    if (failed && reported++ < max)
      ADD_FAILURE() << "decode case " << i << ": " << show_ids(t, d.ids, 0, d.ids.size())
                    << "\n  whale:                 " << escape(got) << "\n  transformers.js:       " << escape(d.decoded)
                    << "\n  tokenizers (Rust):     " << escape(d.hf_decoded)
                    << "\n  whale, skip special:   " << escape(got_skip)
                    << "\n  transformers.js, skip: " << escape(d.decoded_skip)
                    << "\n  tokenizers, skip:      " << escape(d.hf_decoded_skip);
    for (bool skip : {false, true}) {
      std::string error;
      try {
        error = check_streaming(t, d.ids, skip, skip ? got_skip : got);
      } catch (const std::exception& e) {
        error = std::string("threw: ") + e.what();
      }
      if (!error.empty()) {
        ++stream_failures;
        if (reported++ < max)
          ADD_FAILURE() << "decode case " << i << " streamed" << (skip ? " (skip_special_tokens)" : "") << ": "
                        << show_ids(t, d.ids, 0, d.ids.size()) << "\n  " << error;
      }
    }
  }
  std::cout << "[ reference ] decode: whale == transformers.js on " << cases.size() - failures << " of " << cases.size()
            << "; whale == tokenizers (Rust) on " << same_hf << "; transformers.js == tokenizers on " << refs_agree
            << "\n";
  if (failures) ADD_FAILURE() << "whale's decode differs from the reference on " << failures << " of " << cases.size();
  if (stream_failures) ADD_FAILURE() << "streaming decode fails on " << stream_failures << " of " << 2 * cases.size();
}

// add_special_tokens: tokenizer_config.json's add_bos_token / add_eos_token (DeepSeek-V3: BOS 0, no EOS).
TEST_F(TokenizerReference, AddSpecialTokens) {
  const Tokenizer& t = *tokenizer_;
  const nlohmann::json& meta = expected_->meta;
  const bool add_bos = meta.value("add_bos_token", nlohmann::json()).is_boolean() && meta["add_bos_token"].get<bool>();
  const bool add_eos = meta.value("add_eos_token", nlohmann::json()).is_boolean() && meta["add_eos_token"].get<bool>();
  if (add_bos) {
    ASSERT_TRUE(meta["bos_id"].is_number_integer());
    EXPECT_EQ(t.bos_id(), meta["bos_id"].get<int32_t>());
  }
  size_t failures = 0;
  int reported = 0;
  const int max = max_reports();
  for (size_t i = 0; i < expected_->cases.size(); ++i) {
    const Case& c = expected_->cases[i];
    Ids want;
    if (add_bos) want.push_back(meta["bos_id"].get<int32_t>());
    want.insert(want.end(), (*whale_ids_)[i].begin(), (*whale_ids_)[i].end());
    if (add_eos) want.push_back(meta["eos_id"].get<int32_t>());
    const Ids got = t.encode(c.text, true);
    if (got != want) {
      ++failures;
      if (reported++ < max)
        ADD_FAILURE() << "[" << c.category << "] case " << i << " " << escape(c.text)
                      << ": encode(x, add_special_tokens=true) is " << show_ids(t, got, 0, 8) << ", want "
                      << show_ids(t, want, 0, 8);
    }
  }
  if (failures) ADD_FAILURE() << "add_special_tokens wrong on " << failures << " of " << expected_->cases.size();
  if (add_bos) {
    EXPECT_EQ(t.encode("", true), (Ids{meta["bos_id"].get<int32_t>()}));
    EXPECT_EQ(t.encode("Hello", true).front(), meta["bos_id"].get<int32_t>());
  }
}

}  // namespace
}  // namespace whale
