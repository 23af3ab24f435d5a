// tokenizer.json "normalizer": text-to-text rewrites applied before pre-tokenization (Hugging Face tokenizers
// normalizers: Sequence, NFC, NFD, NFKC, NFKD, Replace, Prepend, Lowercase, Strip).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace whale {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string_view text) const = 0;
};

// Builds the normalizer a tokenizer.json "normalizer" object describes; nullptr for JSON null.
// Throws Error naming the unsupported type or malformed field.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j);

}  // namespace whale
