#include "whale/model/latent_kv_cache.h"

namespace whale {

LatentKvCache::LatentKvCache(int n_layers, int kv_lora_rank, int qk_rope_head_dim, int capacity)
    : kv_lora_rank_(kv_lora_rank), row_(kv_lora_rank + qk_rope_head_dim), capacity_(capacity), data_(n_layers) {
  for (auto& layer : data_) layer.resize(static_cast<size_t>(capacity) * row_);
}

}  // namespace whale
