// The MLA latent cache: per layer and token, the normalised latent c_kv (kv_lora_rank values) followed by the
// RoPE'd shared key k_rope (qk_rope_head_dim values), i.e. 576 floats for DeepSeek (deepseek-spec §2.7).
//
// Paged: tokens live in pages of page_tokens tokens × every layer, allocated as the cache grows (a cache costs what
// it holds, not its capacity). Pages are reference-counted, so caches can share them: a page another cache (or the
// serving engine's prefix cache) also holds is never written; a write into it first gives this cache its own copy.
// Within a page a layer's rows are contiguous, which attention uses to walk the cache page by page.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "whale/core/cache_line.h"

namespace whale {

inline constexpr int kLatentPageTokens = 64;

// Rows of page_tokens tokens for every layer: [layer][token][row], from a cache-line boundary (attention's kernels
// read the rows a vector at a time; a row of 576 floats is 36 lines).
struct LatentPage {
  explicit LatentPage(size_t floats) : data(floats) {}
  AlignedVector<float> data;
};

class LatentKvCache {
 public:
  LatentKvCache(int n_layers, int kv_lora_rank, int qk_rope_head_dim, int capacity,
                int page_tokens = kLatentPageTokens);

  int size() const { return size_; }          // tokens whose entries are complete in every layer
  int capacity() const { return capacity_; }  // most tokens it can hold
  int kv_lora_rank() const { return kv_lora_rank_; }
  int row_size() const { return row_; }
  int page_tokens() const { return page_tokens_; }

  // Entry of token `pos` in `layer`: [kv_lora_rank] latent, then [qk_rope_head_dim] rope key. The page holding pos
  // must exist (pos < size(), or reserved); the writable form only for rows reserve() made writable.
  float* row(int layer, int pos) { return page_data(pos / page_tokens_) + offset(layer, pos % page_tokens_); }
  const float* row(int layer, int pos) const {
    return pages_[static_cast<size_t>(pos / page_tokens_)]->data.data() + offset(layer, pos % page_tokens_);
  }

  // Makes the rows of tokens [size, n) writable in every layer: allocates the pages they fall in, and copies a page
  // shared with another holder before it is written. Throws Error if n exceeds the capacity.
  void reserve(int n);
  // Marks tokens [size, n) as written in every layer.
  void commit(int n) { size_ = n; }
  // Forgets every token at or after n (their pages stay, for reuse).
  void truncate(int n) { size_ = n < size_ ? n : size_; }

  // The pages holding tokens [0, size), in order; page i holds tokens [i·page_tokens, (i + 1)·page_tokens).
  std::span<const std::shared_ptr<LatentPage>> pages() const {
    return std::span(pages_).first(static_cast<size_t>((size_ + page_tokens_ - 1) / page_tokens_));
  }
  // Replaces the contents with the first n tokens held by `pages` (made by a cache of the same shape), shared rather
  // than copied. n ≤ pages.size() · page_tokens and n ≤ capacity.
  void share(std::span<const std::shared_ptr<LatentPage>> pages, int n);

 private:
  size_t offset(int layer, int slot) const {
    return (static_cast<size_t>(layer) * page_tokens_ + static_cast<size_t>(slot)) * row_;
  }
  float* page_data(int page) { return pages_[static_cast<size_t>(page)]->data.data(); }

  int n_layers_, kv_lora_rank_, row_, capacity_, page_tokens_, size_ = 0;
  std::vector<std::shared_ptr<LatentPage>> pages_;
};

}  // namespace whale
