// tokenizer.json "pre_tokenizer": splits normalized text into the pieces BPE encodes one at a time (Hugging Face
// tokenizers pre-tokenizers: Sequence, Split, ByteLevel, Digits).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace whale {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces every piece by the pieces it splits into, in order. Empty pieces are dropped.
  virtual void split(std::vector<std::string>& pieces) const = 0;
  // True if this pre-tokenizer (or one inside it) is ByteLevel: pieces then stand for bytes, which BPE maps
  // through the GPT-2 byte alphabet.
  virtual bool byte_level() const { return false; }
};

// How Split treats the pieces its pattern matches (tokenizers SplitDelimiterBehavior).
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// Byte ranges [begin, end) of `text` that a Split with these settings produces, given the pattern's matches.
std::vector<std::pair<size_t, size_t>> split_ranges(size_t text_size,
                                                    const std::vector<std::pair<size_t, size_t>>& matches,
                                                    SplitBehavior behavior, bool invert);

// Builds the pre-tokenizer a tokenizer.json "pre_tokenizer" object describes; nullptr for JSON null.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j);

// GPT-2's pattern, used by ByteLevel with use_regex = true.
extern const char kGpt2Pattern[];

}  // namespace whale
