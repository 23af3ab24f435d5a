// Text generation: prefill a prompt through the latent cache, then sample one token at a time, streaming the text as
// it becomes complete, until EOS, a stop string, the token limit or the end of the context.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "whale/core/thread_pool.h"
#include "whale/model/model.h"
#include "whale/runtime/sampler.h"
#include "whale/tokenizer/tokenizer.h"

namespace whale {

enum class FinishReason { Eos, Stop, Length, Context, Cancelled };
std::string_view finish_reason_name(FinishReason r);  // "eos", "stop", "length", "context", "cancelled"

struct GenerateOptions {
  std::optional<int> max_tokens;  // unset: until EOS, a stop string or the end of the context
  std::vector<std::string> stop;  // generation ends before the first occurrence of any of these
  bool skip_special_tokens = true;  // as DeepSeek's generate.py decodes
  bool ignore_eos = false;          // keep going past EOS (benchmarks, tests)
};

struct GenerationResult {
  FinishReason finish = FinishReason::Length;
  std::vector<int32_t> tokens;  // generated ids (the EOS that ended generation is not included)
  std::string text;             // the streamed text, up to (not including) a stop string
  int prompt_tokens = 0;
  int cached_tokens = 0;  // prompt tokens reused from the previous call's cache
  double prefill_seconds = 0, decode_seconds = 0;
};

// Keeps one latent cache across calls: a prompt that starts with the tokens of the previous call (a chat's history)
// only runs its new tokens through the model.
class Generator {
 public:
  // `context` is the most tokens (prompt and generated) the latent cache holds.
  Generator(const Model& model, const Tokenizer& tokenizer, ThreadPool& pool, int context,
            AttentionForm form = AttentionForm::Absorbed);

  // Generates a continuation of `prompt` (ids, BOS included if wanted). on_text receives each piece of text as soon
  // as it is complete (never part of a UTF-8 character, never part of a possible stop string); returning false
  // cancels. Throws Error if the prompt is empty or does not fit the context.
  // result.prompt_tokens counts the prompt; only the ones not already cached are run (result.cached_tokens).
  GenerationResult generate(std::span<const int32_t> prompt, Sampler& sampler, const GenerateOptions& options,
                            const std::function<bool(std::string_view)>& on_text);

  int context() const { return context_; }
  // Forgets the cached tokens (a new conversation).
  void reset();

 private:
  const Model& model_;
  const Tokenizer& tokenizer_;
  ThreadPool& pool_;
  int context_;
  AttentionForm form_;
  LatentKvCache cache_;
  std::vector<int32_t> cached_;  // the tokens whose entries are in cache_
};

// Generation policy shared by Generator and the serving engine (BatchEngine):
// The id that ends a sequence: the tokenizer's EOS, else config.json's eos_token_id, else none.
std::optional<int32_t> end_of_sequence_id(const Model& model, const Tokenizer& tokenizer);
// How many leading logits sampling looks at: only ids the tokenizer can write. A checkpoint's embedding is often
// padded past the tokenizer's vocabulary (DeepSeek-V3: 129280 rows, 128815 ids), and those rows stand for no text.
int writable_vocab(const Model& model, const Tokenizer& tokenizer);
// How many leading tokens of `prompt` a cache holding `cached` can keep: their common prefix, but never the whole
// prompt (its last token runs again, for its logits).
size_t reusable_prefix(std::span<const int32_t> cached, std::span<const int32_t> prompt);

// Length of the longest proper prefix of `pattern` that ends `text`: how much streamed text must wait because the
// next piece could complete the pattern.
size_t partial_match_length(std::string_view text, std::string_view pattern);

// Holds back streamed text that could still turn into a stop string. push() returns the text safe to show;
// matched() says a stop string was completed (the text before it has then been returned).
class StopStringFilter {
 public:
  explicit StopStringFilter(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  std::string push(std::string_view text);
  std::string flush();  // the held-back text, at the end of generation
  bool matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool matched_ = false;
};

}  // namespace whale
