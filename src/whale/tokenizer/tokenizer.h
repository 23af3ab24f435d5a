// A Hugging Face tokenizer.json (byte-level BPE) with the BOS/EOS rules and chat template of
// tokenizer_config.json. Encoding follows the tokenizers pipeline: added tokens, normalizer, pre-tokenizer, BPE,
// then special tokens; decoding maps tokens back to bytes and renders invalid UTF-8 as U+FFFD.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "whale/tokenizer/added_tokens.h"
#include "whale/tokenizer/bpe.h"
#include "whale/tokenizer/normalizer.h"
#include "whale/tokenizer/pre_tokenizer.h"
#include "whale/tokenizer/utf8.h"

namespace whale {

class Tokenizer {
 public:
  // Reads DIR/tokenizer.json and, if present, DIR/tokenizer_config.json. Errors name the file and the field.
  static Tokenizer load(const std::filesystem::path& dir);
  // The same from the files' text; `config_json` may be empty. `source` names the directory in errors.
  static Tokenizer from_json(std::string_view tokenizer_json, std::string_view config_json, const std::string& source);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Ids of `text` (UTF-8; throws Error naming the offset of invalid UTF-8). With add_special_tokens, the BOS/EOS
  // of tokenizer_config.json (or the post_processor's template) are added.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const;
  // Text of `ids`; invalid UTF-8 becomes U+FFFD. Throws Error for an id outside the vocabulary. Applies
  // transformers' clean_up_tokenization (" ." -> ".", " n't" -> "n't", ...) when tokenizer_config.json asks for it.
  // clean_up_tokenization_spaces overrides the config's choice when given.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false,
                     std::optional<bool> clean_up_tokenization_spaces = std::nullopt) const;
  // The bytes one token stands for (an added token's content, or its vocabulary string through the decoder).
  std::string token_bytes(int32_t id) const;

  int32_t vocab_size() const { return vocab_size_; }
  bool is_special(int32_t id) const;
  std::optional<int32_t> token_id(const std::string& token) const;  // vocabulary or added token
  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }
  const std::string& chat_template() const { return chat_template_; }

 private:
  Tokenizer();
  void encode_text(std::string_view text, std::vector<int32_t>& out) const;

  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  bool byte_level_decoder_ = false;
  std::vector<AddedToken> added_;
  std::unordered_map<int32_t, size_t> added_by_id_;
  std::unique_ptr<AddedTokenMatcher> raw_matcher_, normalized_matcher_;
  std::vector<int32_t> prefix_, suffix_;  // added by encode(…, add_special_tokens = true)
  int32_t vocab_size_ = 0;
  std::optional<int32_t> bos_id_, eos_id_;
  std::string bos_token_, eos_token_, chat_template_;
  bool clean_up_tokenization_spaces_ = false;
};

// Decodes a stream of ids as they are generated: each push returns the text that is complete so far, never part of
// a UTF-8 sequence. The concatenation of all pushes and finish() equals Tokenizer::decode of all ids (before
// clean_up_tokenization, which needs the whole text).
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false)
      : tokenizer_(tokenizer), skip_special_(skip_special_tokens) {}
  std::string push(int32_t id);
  std::string finish() { return utf8_.finish(); }

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  Utf8StreamDecoder utf8_;
};

}  // namespace whale
