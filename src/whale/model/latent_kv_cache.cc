#include "whale/model/latent_kv_cache.h"

#include "whale/core/error.h"

namespace whale {

LatentKvCache::LatentKvCache(int n_layers, int kv_lora_rank, int qk_rope_head_dim, int capacity, int page_tokens)
    : n_layers_(n_layers),
      kv_lora_rank_(kv_lora_rank),
      row_(kv_lora_rank + qk_rope_head_dim),
      capacity_(capacity),
      page_tokens_(page_tokens) {
  if (page_tokens < 1) fail("latent cache: page_tokens = {} must be at least 1", page_tokens);
  if (capacity < 0) fail("latent cache: capacity = {} must not be negative", capacity);
}

void LatentKvCache::reserve(int n) {
  if (n > capacity_) fail("latent cache: {} tokens exceed the capacity of {}", n, capacity_);
  if (n <= size_) return;
  const size_t floats = static_cast<size_t>(n_layers_) * page_tokens_ * row_;
  for (int p = size_ / page_tokens_; p <= (n - 1) / page_tokens_; ++p) {
    const auto i = static_cast<size_t>(p);
    if (i == pages_.size()) pages_.push_back(std::make_shared<LatentPage>(floats));
    // Held elsewhere too (another cache, the prefix cache): those holders keep the old rows.
    else if (pages_[i].use_count() > 1)
      pages_[i] = size_ <= p * page_tokens_ ? std::make_shared<LatentPage>(floats)  // nothing of it is kept
                                            : std::make_shared<LatentPage>(*pages_[i]);
  }
}

void LatentKvCache::share(std::span<const std::shared_ptr<LatentPage>> pages, int n) {
  if (n > capacity_ || n > static_cast<int>(pages.size()) * page_tokens_)
    fail("latent cache: cannot share {} tokens from {} pages of {} (capacity {})", n, pages.size(), page_tokens_,
         capacity_);
  const size_t used = static_cast<size_t>((n + page_tokens_ - 1) / page_tokens_);
  for (size_t i = 0; i < used; ++i) {
    if (i < pages_.size()) pages_[i] = pages[i];
    else pages_.push_back(pages[i]);
  }
  size_ = n;
}

}  // namespace whale
