// Whole pages of latent cache kept for reuse across sequences, keyed by the tokens that produced them: a prompt that
// starts like an earlier one (a system prompt, a conversation's history) takes the pages already computed instead of
// recomputing them, and shares them (the memory too) until it writes past them.
//
// A tree: a page's key is its parent page's key and its own page_tokens tokens, so a page matches only after every
// token before it. Bounded: beyond max_pages the least recently used leaves are dropped (a page still in a running
// sequence's cache lives on there).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "whale/model/latent_kv_cache.h"

namespace whale {

class PrefixCache {
 public:
  // max_pages 0: keeps nothing.
  PrefixCache(int page_tokens, size_t max_pages);

  // The pages of the longest run of whole pages that `tokens` starts with, first page first; marks them used.
  std::vector<std::shared_ptr<LatentPage>> match(std::span<const int32_t> tokens);

  // Adds the whole pages of `cache` not kept yet; tokens[i] is the token at position i of the cache (at least
  // cache.size() of them). The cache's page size must be page_tokens.
  void insert(std::span<const int32_t> tokens, const LatentKvCache& cache);

  size_t pages() const { return nodes_.size(); }
  int page_tokens() const { return page_tokens_; }

 private:
  struct Node {
    uint64_t parent;
    std::vector<int32_t> tokens;
    std::shared_ptr<LatentPage> page;
    uint64_t used;
    int children = 0;
  };
  static uint64_t key(uint64_t parent, std::span<const int32_t> tokens);
  // The node for (parent, tokens), or null.
  Node* find(uint64_t parent, std::span<const int32_t> tokens, uint64_t k);
  void evict();

  int page_tokens_;
  size_t max_pages_;
  uint64_t clock_ = 0;
  std::unordered_map<uint64_t, Node> nodes_;
};

}  // namespace whale
