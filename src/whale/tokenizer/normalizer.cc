#include "whale/tokenizer/normalizer.h"

#include <cstdlib>
#include <vector>

#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include "whale/core/error.h"
#include "whale/tokenizer/regex.h"
#include "whale/tokenizer/utf8.h"

namespace whale {
namespace {

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  std::string normalize(std::string_view text) const override {
    std::string s(text);
    for (const auto& p : parts_) s = p->normalize(s);
    return s;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}
  std::string normalize(std::string_view text) const override {
    utf8proc_uint8_t* out = nullptr;
    const utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()),
                     &out, static_cast<utf8proc_option_t>(options_));
    if (n < 0) fail("Unicode normalization failed: {}", utf8proc_errmsg(n));
    std::string s(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
    std::free(out);
    return s;
  }

 private:
  int options_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(std::unique_ptr<Regex> regex, std::string literal, std::string content)
      : regex_(std::move(regex)), literal_(std::move(literal)), content_(std::move(content)) {}
  std::string normalize(std::string_view text) const override {
    std::string out;
    size_t prev = 0;
    if (regex_) {
      for (const auto& [b, e] : regex_->find_all(text)) {
        out.append(text.substr(prev, b - prev));
        out += content_;
        prev = e;
      }
    } else if (!literal_.empty()) {
      for (size_t pos = text.find(literal_); pos != std::string_view::npos; pos = text.find(literal_, prev)) {
        out.append(text.substr(prev, pos - prev));
        out += content_;
        prev = pos + literal_.size();
      }
    }
    out.append(text.substr(prev));
    return out;
  }

 private:
  std::unique_ptr<Regex> regex_;
  std::string literal_, content_;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string normalize(std::string_view text) const override {
    return text.empty() ? std::string() : prefix_ + std::string(text);
  }

 private:
  std::string prefix_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  std::string normalize(std::string_view text) const override {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) utf8_append(out, static_cast<char32_t>(utf8proc_tolower(utf8_next(text, i))));
    return out;
  }
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(std::string_view text) const override {
    size_t b = 0, e = text.size();
    auto is_space = [](char32_t c) {
      const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
      return c == '\t' || c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || cat == UTF8PROC_CATEGORY_ZS ||
             cat == UTF8PROC_CATEGORY_ZL || cat == UTF8PROC_CATEGORY_ZP || c == 0x85;
    };
    if (left_)
      while (b < e) {
        size_t next = b;
        if (!is_space(utf8_next(text, next))) break;
        b = next;
      }
    if (right_)
      while (e > b) {
        size_t start = e - 1;
        while (start > b && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        size_t probe = start;
        if (!is_space(utf8_next(text, probe))) break;
        e = start;
      }
    return std::string(text.substr(b, e - b));
  }

 private:
  bool left_, right_;
};

std::string string_field(const nlohmann::json& j, const char* key, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_string()) fail("{}: missing string field \"{}\"", where, key);
  return it->get<std::string>();
}

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j) {
  if (j.is_null()) return nullptr;
  if (!j.is_object()) fail("normalizer is not an object");
  const std::string type = string_field(j, "type", "normalizer");
  const std::string where = "normalizer " + type;
  if (type == "Sequence") {
    const auto it = j.find("normalizers");
    if (it == j.end() || !it->is_array()) fail("{}: missing array \"normalizers\"", where);
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const auto& p : *it)
      if (auto n = make_normalizer(p)) parts.push_back(std::move(n));
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  if (type == "Replace") {
    const auto pattern = j.find("pattern");
    if (pattern == j.end() || !pattern->is_object()) fail("{}: missing object \"pattern\"", where);
    const std::string content = string_field(j, "content", where);
    if (pattern->contains("Regex"))
      return std::make_unique<ReplaceNormalizer>(std::make_unique<Regex>(string_field(*pattern, "Regex", where)), "",
                                                 content);
    return std::make_unique<ReplaceNormalizer>(nullptr, string_field(*pattern, "String", where), content);
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(string_field(j, "prepend", where));
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Strip")
    return std::make_unique<StripNormalizer>(j.value("strip_left", true), j.value("strip_right", true));
  fail("normalizer type \"{}\" is not supported", type);
}

}  // namespace whale
