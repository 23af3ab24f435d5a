// The BPE model of tokenizer.json: a vocabulary and ranked merges, applied lowest rank first (Sennrich et al.,
// as Hugging Face tokenizers' BPE does it).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace whale {

// The parts of tokenizer.json's "model" object that BPE needs, viewing strings owned by the parsed document.
struct BpeModelData {
  std::vector<std::pair<std::string_view, int64_t>> vocab;
  std::vector<std::pair<std::string_view, std::string_view>> merges;  // in rank order
  bool ignore_merges = false;
  bool byte_fallback = false;
  std::string unk_token;  // empty: none
};

class BpeModel {
 public:
  // `byte_level`: pieces are raw bytes that start as the vocabulary's GPT-2 byte characters.
  // Throws Error if an id is invalid or a merge names a token missing from the vocabulary.
  BpeModel(const BpeModelData& data, bool byte_level);

  // Appends the ids of one pre-tokenized piece.
  void encode(std::string_view piece, std::vector<int32_t>& out) const;

  // The vocabulary's string for an id (byte-level text for byte-level models); empty if the id is unknown.
  const std::string& token(int32_t id) const;
  int32_t id_of(std::string_view token) const;  // -1 if absent
  // One past the largest id in the vocabulary.
  int32_t size() const { return static_cast<int32_t>(tokens_.size()); }

 private:
  struct Merge {
    int32_t rank;
    int32_t merged;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void merge_symbols(std::vector<int32_t>& symbols) const;
  void encode_uncached(std::string_view piece, std::vector<int32_t>& out) const;

  bool byte_level_;
  bool ignore_merges_ = false;
  int32_t unk_id_ = -1;
  bool byte_fallback_ = false;
  std::vector<std::string> tokens_;                         // id -> vocabulary string
  std::unordered_map<std::string_view, int32_t> vocab_;     // views into tokens_
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t byte_ids_[256];  // byte-level: id of each byte's character, or -1

  // Pieces repeat (words, spaces, punctuation), so their ids are cached. Bounded; cleared when full.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace whale
