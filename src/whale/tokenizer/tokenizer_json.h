// Reading tokenizer.json: simdjson for the large vocabulary and merges (7.8 MB for DeepSeek-V3, parsed in
// milliseconds), nlohmann::json for the small configuration objects the factories read.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "whale/tokenizer/bpe.h"

namespace whale {

struct TokenizerJson {
  nlohmann::json normalizer, pre_tokenizer, post_processor, decoder, added_tokens;  // null when absent
  BpeModelData model;  // views into the parsed document, valid while this object lives
  std::shared_ptr<void> document;  // owns the simdjson parser the views point into
};

// Parses tokenizer.json text; throws Error (without the file name; the caller adds it) on malformed JSON, a
// missing or mistyped field, or an unsupported model type or option.
TokenizerJson parse_tokenizer_json(std::string_view text);

}  // namespace whale
