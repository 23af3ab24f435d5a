// Training data: one token stream from a .txt or .jsonl file, its training / validation split, and the windows of
// each micro-batch (docs/training.md, "Data and batch layout").
#pragma once

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace whale {
class Tokenizer;
}

namespace whale::train {

// The ids of FILE: .txt is one document; .jsonl has one object per line with "text" (tokenized with `tokenizer`,
// which may be null when no line has text) or "input_ids". Each document is followed by eos_id when eos_id >= 0.
// Errors name the file and line.
std::vector<int32_t> load_token_stream(const std::filesystem::path& file, const Tokenizer* tokenizer, int32_t eos_id,
                                       int32_t vocab_size);

// The ids of a .jsonl file's contents `text`, as load_token_stream reads them; `source` names the file in errors.
std::vector<int32_t> parse_jsonl_tokens(std::string_view text, const std::string& source, const Tokenizer* tokenizer,
                                        int32_t eos_id, int32_t vocab_size);

enum class DataOrder { Sequential, Random };

class Dataset {
 public:
  // Splits `stream` (the last floor(n · val_fraction) ids are validation). Throws Error when the training split has
  // fewer than seq_len + 1 ids.
  Dataset(std::vector<int32_t> stream, double val_fraction, int64_t seq_len, DataOrder order, uint64_t seed);

  int64_t train_tokens() const { return n_train_; }
  int64_t val_tokens() const { return static_cast<int64_t>(stream_.size()) - n_train_; }
  int64_t seq_len() const { return T_; }

  // The B windows of micro-batch m, as B·(T+1) ids. Random order draws from the generator, so micro-batches must be
  // asked for in order 0, 1, 2, … (as training does); sequential order is a pure function of m.
  std::vector<int32_t> micro_batch(int64_t m, int64_t B);
  // Validation windows starting at 0, T, 2T, … that fit whole, at most max_windows of them.
  std::vector<int32_t> validation_windows(int64_t max_windows, int64_t& count) const;

  // Random order's generator, saved with a checkpoint so that a resumed run draws what the original would have.
  std::mt19937_64& rng() { return rng_; }

 private:
  std::vector<int32_t> stream_;
  int64_t n_train_ = 0;
  int64_t T_ = 0;
  DataOrder order_;
  std::mt19937_64 rng_;
};

}  // namespace whale::train
