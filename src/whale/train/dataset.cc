#include "whale/train/dataset.h"

#include <algorithm>
#include <climits>
#include <cmath>

#include <nlohmann/json.hpp>

#include "whale/core/error.h"
#include "whale/io/json_file.h"
#include "whale/io/text_file.h"
#include "whale/tokenizer/tokenizer.h"

namespace whale::train {
std::vector<int32_t> parse_jsonl_tokens(std::string_view text, const std::string& source, const Tokenizer* tokenizer,
                                        int32_t eos_id, int32_t vocab_size) {
  std::vector<int32_t> ids;
  for_each_json_line(text, source, " \t\r", [&](const nlohmann::json& j, const std::string& where) {
    if (!j.is_object()) fail("{}: expected a JSON object with \"text\" or \"input_ids\"", where);
    if (const auto it = j.find("input_ids"); it != j.end()) {
      if (!it->is_array()) fail("{}: \"input_ids\" must be an array of token ids", where);
      for (const auto& v : *it) {
        if (!v.is_number_integer()) fail("{}: \"input_ids\" must hold integers", where);
        const int64_t id = v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                               ? INT64_MAX
                               : v.get<int64_t>();
        if (id < 0 || id >= vocab_size) fail("{}: token id {} is outside the vocabulary [0, {})", where, id, vocab_size);
        ids.push_back(static_cast<int32_t>(id));
      }
    } else if (const auto t = j.find("text"); t != j.end()) {
      if (!t->is_string()) fail("{}: \"text\" must be a string", where);
      if (!tokenizer) fail("{}: a \"text\" document needs --tokenizer", where);
      const std::vector<int32_t> doc = tokenizer->encode(t->get<std::string>());
      ids.insert(ids.end(), doc.begin(), doc.end());
    } else {
      fail("{}: expected a JSON object with \"text\" or \"input_ids\"", where);
    }
    if (eos_id >= 0) ids.push_back(eos_id);
  });
  return ids;
}

std::vector<int32_t> load_token_stream(const std::filesystem::path& file, const Tokenizer* tokenizer, int32_t eos_id,
                                       int32_t vocab_size) {
  const std::string text = read_text_file(file);
  std::vector<int32_t> ids;
  auto end_document = [&] {
    if (eos_id >= 0) ids.push_back(eos_id);
  };
  const std::string ext = file.extension().string();
  if (ext == ".txt") {
    if (!tokenizer) fail("{}: a .txt data file needs --tokenizer", file.string());
    ids = tokenizer->encode(text);
    end_document();
  } else if (ext == ".jsonl") {
    ids = parse_jsonl_tokens(text, file.string(), tokenizer, eos_id, vocab_size);
  } else {
    fail("{}: unsupported data file type \"{}\" (expected .txt or .jsonl)", file.string(), ext);
  }
  for (int32_t id : ids)
    if (id < 0 || id >= vocab_size)
      fail("{}: the tokenizer produced id {}, outside the model's vocabulary [0, {})", file.string(), id, vocab_size);
  return ids;
}

Dataset::Dataset(std::vector<int32_t> stream, double val_fraction, int64_t seq_len, DataOrder order, uint64_t seed)
    : stream_(std::move(stream)), T_(seq_len), order_(order), rng_(seed) {
  const int64_t n = static_cast<int64_t>(stream_.size());
  const int64_t n_val = static_cast<int64_t>(std::floor(static_cast<double>(n) * val_fraction));
  n_train_ = n - n_val;
  if (n_train_ < T_ + 1)
    fail("the training split has {} tokens, fewer than --seq-len + 1 = {} (the data has {} tokens)", n_train_, T_ + 1, n);
}

std::vector<int32_t> Dataset::micro_batch(int64_t m, int64_t B) {
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(B * (T_ + 1)));
  const int64_t span = n_train_ - T_;  // windows start in [0, span)
  for (int64_t b = 0; b < B; ++b) {
    int64_t start;
    if (order_ == DataOrder::Sequential) {
      start = ((m * B + b) * T_) % span;
    } else {
      std::uniform_int_distribution<int64_t> pick(0, span - 1);
      start = pick(rng_);
    }
    out.insert(out.end(), stream_.begin() + start, stream_.begin() + start + T_ + 1);
  }
  return out;
}

std::vector<int32_t> Dataset::validation_windows(int64_t max_windows, int64_t& count) const {
  std::vector<int32_t> out;
  count = 0;
  for (int64_t start = n_train_; start + T_ + 1 <= static_cast<int64_t>(stream_.size()) && count < max_windows;
       start += T_, ++count)
    out.insert(out.end(), stream_.begin() + start, stream_.begin() + start + T_ + 1);
  return out;
}

}  // namespace whale::train
