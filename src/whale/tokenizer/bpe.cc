#include "whale/tokenizer/bpe.h"

#include <queue>

#include <nlohmann/json.hpp>

#include "whale/core/error.h"
#include "whale/tokenizer/byte_level.h"
#include "whale/tokenizer/utf8.h"

namespace whale {
namespace {

constexpr size_t kCacheLimit = 1 << 18;
constexpr size_t kCacheMaxPieceBytes = 64;

}  // namespace

BpeModel::BpeModel(const nlohmann::json& model, bool byte_level) : byte_level_(byte_level) {
  if (!model.is_object()) fail("tokenizer.json: \"model\" is not an object");
  const std::string type = model.value("type", std::string("BPE"));
  if (type != "BPE") fail("tokenizer.json: model type \"{}\" is not supported (only BPE)", type);
  if (const auto d = model.find("dropout"); d != model.end() && !d->is_null() && d->get<double>() != 0.0)
    fail("tokenizer.json: BPE dropout is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (const auto it = model.find(key); it != model.end() && !it->is_null() && !it->get<std::string>().empty())
      fail("tokenizer.json: BPE \"{}\" is not supported", key);
  ignore_merges_ = model.value("ignore_merges", false);
  byte_fallback_ = model.value("byte_fallback", false);

  const auto vocab = model.find("vocab");
  if (vocab == model.end() || !vocab->is_object()) fail("tokenizer.json: model.vocab is not an object");
  vocab_.reserve(vocab->size());
  for (const auto& [text, id] : vocab->items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (1 << 30))
      fail("tokenizer.json: model.vocab entry \"{}\" has an invalid id", text);
    const int32_t i = id.get<int32_t>();
    vocab_[text] = i;
    if (static_cast<size_t>(i) >= tokens_.size()) tokens_.resize(i + 1);
    tokens_[i] = text;
  }

  const auto merges = model.find("merges");
  if (merges == model.end() || !merges->is_array()) fail("tokenizer.json: model.merges is not an array");
  merges_.reserve(merges->size());
  int32_t rank = 0;
  for (const auto& m : *merges) {
    std::string left, right;
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        fail("tokenizer.json: merge {} (\"{}\") is not two tokens separated by a space", rank, s);
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      fail("tokenizer.json: merge {} is neither \"a b\" nor [\"a\", \"b\"]", rank);
    }
    const int32_t a = id_of(left), b = id_of(right), merged = id_of(left + right);
    if (a < 0 || b < 0 || merged < 0)
      fail("tokenizer.json: merge {} (\"{} {}\") uses a token missing from the vocabulary", rank, left, right);
    merges_.emplace(pair_key(a, b), Merge{rank, merged});  // the first (lowest-rank) duplicate wins
    ++rank;
  }

  if (const auto unk = model.find("unk_token"); unk != model.end() && unk->is_string())
    unk_id_ = id_of(unk->get<std::string>());
  for (int b = 0; b < 256; ++b) byte_ids_[b] = byte_level_ ? id_of(byte_level_text(static_cast<uint8_t>(b))) : -1;
}

const std::string& BpeModel::token(int32_t id) const {
  static const std::string empty;
  return id >= 0 && static_cast<size_t>(id) < tokens_.size() ? tokens_[id] : empty;
}

int32_t BpeModel::id_of(const std::string& token) const {
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
      if (const int32_t id = id_of(std::string(piece)); id >= 0) {
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
