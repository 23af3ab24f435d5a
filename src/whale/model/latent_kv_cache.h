// The MLA latent cache: per layer and token, the normalised latent c_kv (kv_lora_rank values) followed by the
// RoPE'd shared key k_rope (qk_rope_head_dim values), i.e. 576 floats for DeepSeek (deepseek-spec §2.7).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace whale {

class LatentKvCache {
 public:
  LatentKvCache(int n_layers, int kv_lora_rank, int qk_rope_head_dim, int capacity);

  int size() const { return size_; }          // tokens whose entries are complete in every layer
  int capacity() const { return capacity_; }  // most tokens it can hold
  int kv_lora_rank() const { return kv_lora_rank_; }
  int row_size() const { return row_; }

  // Entry of token `pos` in `layer`: [kv_lora_rank] latent, then [qk_rope_head_dim] rope key.
  float* row(int layer, int pos) { return data_[layer].data() + static_cast<size_t>(pos) * row_; }
  const float* row(int layer, int pos) const { return data_[layer].data() + static_cast<size_t>(pos) * row_; }

  // Marks tokens [size, n) as written in every layer.
  void commit(int n) { size_ = n; }
  // Forgets every token at or after n.
  void truncate(int n) { size_ = n < size_ ? n : size_; }

 private:
  int kv_lora_rank_, row_, capacity_, size_ = 0;
  std::vector<std::vector<float>> data_;
};

}  // namespace whale
