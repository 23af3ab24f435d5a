#include "whale/tokenizer/added_tokens.h"

#include <utf8proc.h>

#include "whale/tokenizer/regex.h"
#include "whale/tokenizer/utf8.h"

namespace whale {
namespace {

// A word character as Hugging Face tokenizers decides single_word: the Rust regex crate's Unicode \w.
bool is_word_char(std::string_view text, size_t pos) {
  static const Regex word("^[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]");
  size_t end = pos;
  utf8_next(text, end);
  return !word.find_all(text.substr(pos, end - pos)).empty();
}

bool is_space(char32_t c) {
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return (c >= 0x09 && c <= 0x0D) || c == 0x85 || cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
         cat == UTF8PROC_CATEGORY_ZP;
}

// Start of the code point that ends at text[end - 1].
size_t previous_char_start(std::string_view text, size_t end) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) --i;
  return i;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(const std::vector<const AddedToken*>& tokens) : trie_(1) {
  for (const AddedToken* t : tokens) {
    if (t->content.empty()) continue;
    int node = 0;
    for (unsigned char c : t->content) {
      auto it = trie_[node].children.find(c);
      if (it == trie_[node].children.end()) {
        trie_.emplace_back();
        it = trie_[node].children.emplace(c, static_cast<int>(trie_.size()) - 1).first;
      }
      node = it->second;
    }
    if (trie_[node].token < 0) {
      trie_[node].token = static_cast<int>(tokens_.size());
      tokens_.push_back(t);
    }
    first_byte_[static_cast<unsigned char>(t->content[0])] = true;
  }
}

int AddedTokenMatcher::longest_at(std::string_view text, size_t pos, size_t& length) const {
  int node = 0, best = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto it = trie_[node].children.find(static_cast<unsigned char>(text[i]));
    if (it == trie_[node].children.end()) break;
    node = it->second;
    if (trie_[node].token >= 0) {
      best = trie_[node].token;
      length = i + 1 - pos;
    }
  }
  return best;
}

std::vector<TextSegment> AddedTokenMatcher::split(std::string_view text) const {
  std::vector<TextSegment> out;
  size_t emitted = 0;  // text before this offset is already in `out`
  size_t pos = 0;
  while (pos < text.size()) {
    size_t length = 0;
    const int index = first_byte_[static_cast<unsigned char>(text[pos])] ? longest_at(text, pos, length) : -1;
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& t = *tokens_[index];
    size_t start = pos, stop = pos + length;
    if (t.single_word) {
      const bool word_before = start > 0 && is_word_char(text, previous_char_start(text, start));
      const bool word_after = stop < text.size() && is_word_char(text, stop);
      if (word_before || word_after) {
        pos = stop;  // tokenizers skips a rejected match whole and searches on after it
        continue;
      }
    }
    if (t.lstrip)
      while (start > emitted) {
        const size_t prev = previous_char_start(text, start);
        size_t probe = prev;
        if (!is_space(utf8_next(text, probe))) break;
        start = prev;
      }
    if (t.rstrip)
      while (stop < text.size()) {
        size_t probe = stop;
        if (!is_space(utf8_next(text, probe))) break;
        stop = probe;
      }
    if (start > emitted) out.push_back({-1, text.substr(emitted, start - emitted)});
    out.push_back({t.id, text.substr(start, stop - start)});
    emitted = pos = stop;
  }
  if (emitted < text.size()) out.push_back({-1, text.substr(emitted)});
  return out;
}

}  // namespace whale
