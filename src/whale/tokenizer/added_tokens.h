// Added tokens (tokenizer.json "added_tokens"): strings matched in the text before pre-tokenization, leftmost and
// longest first, honouring lstrip, rstrip and single_word (Hugging Face AddedVocabulary).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace whale {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;  // matched in normalized text (true) or raw text (false)
};

// A piece of input: an added token's id, or text (id -1) that still needs normalizing and BPE.
struct TextSegment {
  int32_t id = -1;
  std::string_view text;
};

class AddedTokenMatcher {
 public:
  // `tokens` of the one kind (normalized or not) this matcher finds.
  explicit AddedTokenMatcher(const std::vector<const AddedToken*>& tokens);

  // Splits `text` into added tokens and the text between them (empty text is dropped).
  std::vector<TextSegment> split(std::string_view text) const;
  bool empty() const { return tokens_.empty(); }

 private:
  struct Node {
    std::unordered_map<unsigned char, int> children;
    int token = -1;  // index into tokens_ of the token ending here
  };
  // Longest token starting at text[pos], or -1.
  int longest_at(std::string_view text, size_t pos, size_t& length) const;

  std::vector<const AddedToken*> tokens_;
  std::vector<Node> trie_;
  bool first_byte_[256] = {};
};

}  // namespace whale
