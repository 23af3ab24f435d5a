// A compiled PCRE2 pattern (UTF, UCP, JIT) for the tokenizer's Unicode-property regexes.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace whale {

// `\s` and `\S` are rewritten to Unicode White_Space (as Hugging Face tokenizers' Oniguruma and Rust's regex
// crate define it): PCRE2 also counts U+180E MONGOLIAN VOWEL SEPARATOR, which Unicode 6.3 took out.
std::string with_unicode_white_space(const std::string& pattern);

class Regex {
 public:
  // Compiles `pattern`; throws Error with the PCRE2 message and offset if it does not compile.
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // Non-empty, non-overlapping matches of the pattern in `text` (valid UTF-8), as byte ranges [begin, end).
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Impl;
  std::string pattern_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace whale
