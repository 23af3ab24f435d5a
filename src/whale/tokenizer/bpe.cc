#include "whale/tokenizer/bpe.h"

#include <algorithm>
#include <queue>

#include "whale/core/error.h"
#include "whale/tokenizer/byte_level.h"
#include "whale/tokenizer/utf8.h"

namespace whale {
namespace {

constexpr size_t kCacheLimit = 1 << 18;
// Vocabulary ids are dense in every real tokenizer.json (a few holes at most, for added tokens); the id table is sized
// by the largest id, so an id far past the number of entries would make a file of a few bytes allocate gigabytes.
constexpr int64_t kMaxIdsPastEntries = 1 << 16;
constexpr size_t kCacheMaxPieceBytes = 64;

}  // namespace

BpeModel::BpeModel(const BpeModelData& data, bool byte_level)
    : byte_level_(byte_level), ignore_merges_(data.ignore_merges), byte_fallback_(data.byte_fallback) {
  int64_t max_id = -1;
  for (const auto& [text, id] : data.vocab) {
    if (id < 0 || id >= (1 << 30)) fail("model.vocab entry \"{}\" has an invalid id {}", text, id);
    max_id = std::max(max_id, id);
  }
  if (max_id >= static_cast<int64_t>(data.vocab.size()) + kMaxIdsPastEntries)
    fail("model.vocab id {} is far past its {} entries: ids must be dense", max_id, data.vocab.size());
  tokens_.resize(static_cast<size_t>(max_id + 1));
  std::vector<bool> seen(tokens_.size());
  for (const auto& [text, id] : data.vocab) {
    if (seen[id]) fail("model.vocab gives id {} to more than one token (\"{}\")", id, text);
    seen[id] = true;
    tokens_[id] = std::string(text);
  }
  vocab_.reserve(data.vocab.size());
  for (const auto& [text, id] : data.vocab) vocab_[tokens_[id]] = static_cast<int32_t>(id);

  merges_.reserve(data.merges.size());
  std::string joined;
  int32_t rank = 0;
  for (const auto& [left, right] : data.merges) {
    joined.assign(left);
    joined.append(right);
    const int32_t a = id_of(left), b = id_of(right), merged = id_of(joined);
    if (a < 0 || b < 0 || merged < 0)
      fail("model.merges[{}] (\"{} {}\") uses a token missing from the vocabulary", rank, left, right);
    merges_.emplace(pair_key(a, b), Merge{rank, merged});  // the first (lowest-rank) duplicate wins
    ++rank;
  }

  if (!data.unk_token.empty()) unk_id_ = id_of(data.unk_token);
  for (int b = 0; b < 256; ++b) byte_ids_[b] = byte_level_ ? id_of(byte_level_text(static_cast<uint8_t>(b))) : -1;
}

const std::string& BpeModel::token(int32_t id) const {
  static const std::string empty;
  return id >= 0 && static_cast<size_t>(id) < tokens_.size() ? tokens_[id] : empty;
}

int32_t BpeModel::id_of(std::string_view token) const {
  const auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

void BpeModel::merge_symbols(std::vector<int32_t>& symbols) const {
  const int n = static_cast<int>(symbols.size());
  if (n < 2) return;
  // Linked list over symbol slots, and a queue of candidate merges ordered by (rank, position).
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    int pos;
    int32_t left, right;  // the ids expected at pos and next[pos]; stale entries no longer match
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto consider = [&](int pos) {
    if (pos < 0 || next[pos] < 0) return;
    const auto it = merges_.find(pair_key(symbols[pos], symbols[next[pos]]));
    if (it != merges_.end()) queue.push({it->second.rank, pos, symbols[pos], symbols[next[pos]]});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    const int right = next[c.pos];
    if (symbols[c.pos] != c.left || right < 0 || symbols[right] != c.right) continue;  // stale
    symbols[c.pos] = merges_.at(pair_key(c.left, c.right)).merged;
    symbols[right] = -1;
    next[c.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = c.pos;
    consider(prev[c.pos]);
    consider(c.pos);
  }
  size_t w = 0;
  for (int i = 0; i >= 0; i = next[i]) symbols[w++] = symbols[i];
  symbols.resize(w);
}

void BpeModel::encode_uncached(std::string_view piece, std::vector<int32_t>& out) const {
  std::vector<int32_t> symbols;
  symbols.reserve(piece.size());
  if (byte_level_) {
    if (ignore_merges_) {
      std::string text;
      for (char c : piece) text += byte_level_text(static_cast<uint8_t>(c));
      if (const int32_t id = id_of(text); id >= 0) {
        out.push_back(id);
        return;
      }
    }
    for (char c : piece)
      if (const int32_t id = byte_ids_[static_cast<uint8_t>(c)]; id >= 0) symbols.push_back(id);
  } else {
    if (ignore_merges_)
      if (const int32_t id = id_of(piece); id >= 0) {
        out.push_back(id);
        return;
      }
    for (size_t i = 0; i < piece.size();) {
      const size_t start = i;
      utf8_next(piece, i);
      const std::string ch(piece.substr(start, i - start));
      if (const int32_t id = id_of(ch); id >= 0) {
        symbols.push_back(id);
      } else if (byte_fallback_) {
        for (char b : ch) {
          const int32_t bid = id_of(fmt::format("<0x{:02X}>", static_cast<uint8_t>(b)));
          if (bid >= 0) symbols.push_back(bid);
          else if (unk_id_ >= 0) symbols.push_back(unk_id_);
        }
      } else if (unk_id_ >= 0) {
        symbols.push_back(unk_id_);
      }
    }
  }
  merge_symbols(symbols);
  out.insert(out.end(), symbols.begin(), symbols.end());
}

void BpeModel::encode(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.size() > kCacheMaxPieceBytes) {
    encode_uncached(piece, out);
    return;
  }
  const std::string key(piece);
  {
    std::lock_guard lock(cache_mutex_);
    if (const auto it = cache_.find(key); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  encode_uncached(piece, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard lock(cache_mutex_);
  if (cache_.size() >= kCacheLimit) cache_.clear();
  cache_.emplace(key, std::move(ids));
}

}  // namespace whale
