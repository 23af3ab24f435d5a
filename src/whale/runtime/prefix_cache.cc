#include "whale/runtime/prefix_cache.h"

#include <algorithm>

#include "whale/core/error.h"

namespace whale {

namespace {
constexpr uint64_t kRoot = 0;  // the parent key of a first page
}  // namespace

PrefixCache::PrefixCache(int page_tokens, size_t max_pages) : page_tokens_(page_tokens), max_pages_(max_pages) {
  if (page_tokens < 1) fail("prefix cache: page_tokens = {} must be at least 1", page_tokens);
}

// FNV-1a over the parent key and the token ids; never kRoot.
uint64_t PrefixCache::key(uint64_t parent, std::span<const int32_t> tokens) {
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](uint64_t v) {
    for (int b = 0; b < 8; ++b) {
      h ^= (v >> (8 * b)) & 0xFF;
      h *= 0x100000001b3ull;
    }
  };
  mix(parent);
  for (int32_t t : tokens) mix(static_cast<uint32_t>(t));
  return h == kRoot ? 1 : h;
}

PrefixCache::Node* PrefixCache::find(uint64_t parent, std::span<const int32_t> tokens, uint64_t k) {
  const auto it = nodes_.find(k);
  if (it == nodes_.end()) return nullptr;
  Node& n = it->second;
  // A hash collision is a miss, never someone else's page.
  if (n.parent != parent || !std::equal(n.tokens.begin(), n.tokens.end(), tokens.begin(), tokens.end())) return nullptr;
  return &n;
}

std::vector<std::shared_ptr<LatentPage>> PrefixCache::match(std::span<const int32_t> tokens) {
  std::vector<std::shared_ptr<LatentPage>> pages;
  const size_t pt = static_cast<size_t>(page_tokens_);
  uint64_t parent = kRoot;
  ++clock_;
  for (size_t p0 = 0; p0 + pt <= tokens.size(); p0 += pt) {
    const auto page_tokens = tokens.subspan(p0, pt);
    const uint64_t k = key(parent, page_tokens);
    Node* n = find(parent, page_tokens, k);
    if (!n) break;
    n->used = clock_;
    pages.push_back(n->page);
    parent = k;
  }
  return pages;
}

void PrefixCache::insert(std::span<const int32_t> tokens, const LatentKvCache& cache) {
  if (max_pages_ == 0) return;
  if (cache.page_tokens() != page_tokens_)
    fail("prefix cache: a cache with pages of {} tokens, not {}", cache.page_tokens(), page_tokens_);
  if (tokens.size() < static_cast<size_t>(cache.size()))
    fail("prefix cache: {} tokens for a cache of {}", tokens.size(), cache.size());
  const size_t pt = static_cast<size_t>(page_tokens_), whole = static_cast<size_t>(cache.size()) / pt;
  const auto pages = cache.pages();
  uint64_t parent = kRoot;
  ++clock_;
  for (size_t p = 0; p < whole; ++p) {
    const auto page_tokens = tokens.subspan(p * pt, pt);
    const uint64_t k = key(parent, page_tokens);
    if (Node* n = find(parent, page_tokens, k)) {
      n->used = clock_;
    } else {
      if (nodes_.count(k)) break;  // a collision holds the key: keep what is there
      nodes_.emplace(k, Node{parent, {page_tokens.begin(), page_tokens.end()}, pages[p], clock_});
      if (parent != kRoot) ++nodes_.at(parent).children;
    }
    parent = k;
  }
  evict();
}

void PrefixCache::evict() {
  while (nodes_.size() > max_pages_) {
    auto lru = nodes_.end();
    for (auto it = nodes_.begin(); it != nodes_.end(); ++it)
      if (it->second.children == 0 && (lru == nodes_.end() || it->second.used < lru->second.used)) lru = it;
    if (lru == nodes_.end()) return;  // cannot happen: a tree always has a leaf
    if (lru->second.parent != kRoot) --nodes_.at(lru->second.parent).children;
    nodes_.erase(lru);
  }
}

}  // namespace whale
