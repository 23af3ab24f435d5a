#include "whale/runtime/generator.h"

#include <algorithm>
#include <chrono>

#include "whale/core/error.h"

namespace whale {

std::string_view finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Eos: return "eos";
    case FinishReason::Stop: return "stop";
    case FinishReason::Length: return "length";
    case FinishReason::Context: return "context";
    case FinishReason::Cancelled: return "cancelled";
  }
  return "?";
}

size_t partial_match_length(std::string_view text, std::string_view pattern) {
  for (size_t n = std::min(text.size(), pattern.empty() ? 0 : pattern.size() - 1); n > 0; --n)
    if (text.substr(text.size() - n) == pattern.substr(0, n)) return n;
  return 0;
}

std::string StopStringFilter::push(std::string_view text) {
  if (matched_) return "";
  pending_ += text;
  // The earliest complete stop string ends generation; what precedes it is released.
  size_t first = std::string::npos;
  for (const std::string& s : stops_)
    if (!s.empty()) first = std::min(first, pending_.find(s));
  if (first != std::string::npos) {
    matched_ = true;
    std::string out = pending_.substr(0, first);
    pending_.clear();
    return out;
  }
  // Keep the longest tail that is a proper prefix of some stop string.
  size_t keep = 0;
  for (const std::string& s : stops_) keep = std::max(keep, partial_match_length(pending_, s));
  std::string out = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string StopStringFilter::flush() {
  std::string out = matched_ ? "" : pending_;
  pending_.clear();
  return out;
}

std::optional<int32_t> end_of_sequence_id(const Model& model, const Tokenizer& tokenizer) {
  if (tokenizer.eos_id()) return tokenizer.eos_id();
  if (model.config().eos_token_id >= 0) return model.config().eos_token_id;
  return std::nullopt;
}

int writable_vocab(const Model& model, const Tokenizer& tokenizer) {
  return std::min(model.config().vocab_size, static_cast<int>(tokenizer.vocab_size()));
}

size_t reusable_prefix(std::span<const int32_t> cached, std::span<const int32_t> prompt) {
  size_t keep = 0;
  while (keep < cached.size() && keep + 1 < prompt.size() && cached[keep] == prompt[keep]) ++keep;
  return keep;
}

Generator::Generator(const Model& model, const Tokenizer& tokenizer, ThreadPool& pool, int context,
                     AttentionForm form)
    : model_(model),
      tokenizer_(tokenizer),
      pool_(pool),
      context_(context),
      form_(form),
      cache_(model.make_cache(context)) {}

void Generator::reset() {
  cache_.truncate(0);
  cached_.clear();
}

GenerationResult Generator::generate(std::span<const int32_t> prompt, Sampler& sampler, const GenerateOptions& options,
                                     const std::function<bool(std::string_view)>& on_text) {
  using clock = std::chrono::steady_clock;
  if (prompt.empty()) fail("the prompt is empty");
  if (static_cast<int>(prompt.size()) >= context_)
    fail("the prompt is {} tokens; the context holds {} (raise --ctx)", prompt.size(), context_);
  const int vocab = model_.config().vocab_size, sampled_vocab = writable_vocab(model_, tokenizer_);
  const std::optional<int32_t> eos = end_of_sequence_id(model_, tokenizer_);

  GenerationResult result;
  result.prompt_tokens = static_cast<int>(prompt.size());
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  const size_t keep =
      reusable_prefix(std::span(cached_).first(std::min(cached_.size(), static_cast<size_t>(cache_.size()))), prompt);
  cache_.truncate(static_cast<int>(keep));
  cached_.assign(prompt.begin(), prompt.end());
  result.cached_tokens = static_cast<int>(keep);
  StreamingDecoder decoder(tokenizer_, options.skip_special_tokens);
  StopStringFilter stops(options.stop);

  auto emit = [&](const std::string& piece) {
    if (piece.empty()) return true;
    result.text += piece;
    return on_text(piece);
  };

  auto t0 = clock::now();
  std::vector<float> logits = model_.forward(prompt.subspan(keep), cache_, pool_, form_, Model::LogitRows::Last);
  result.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  std::span<const float> last(logits.data() + logits.size() - vocab, vocab);
  t0 = clock::now();

  result.finish = FinishReason::Length;
  for (;;) {
    if (options.max_tokens && static_cast<int>(result.tokens.size()) >= *options.max_tokens) {
      result.finish = FinishReason::Length;
      break;
    }
    const SampledToken next = sampler.sample(last.first(static_cast<size_t>(sampled_vocab)), history);
    if (eos && next.id == *eos && !options.ignore_eos) {
      result.finish = FinishReason::Eos;
      break;
    }
    result.tokens.push_back(next.id);
    history.push_back(next.id);
    if (!emit(stops.push(decoder.push(next.id)))) {
      result.finish = FinishReason::Cancelled;
      break;
    }
    if (stops.matched()) {
      result.finish = FinishReason::Stop;
      break;
    }
    if (cache_.size() >= context_) {
      result.finish = FinishReason::Context;
      break;
    }
    const int32_t id = next.id;
    logits = model_.forward(std::span(&id, 1), cache_, pool_, form_);
    cached_.push_back(id);
    last = std::span<const float>(logits.data(), vocab);
  }
  if (result.finish != FinishReason::Cancelled && result.finish != FinishReason::Stop) {
    emit(stops.push(decoder.finish()));
    if (!stops.matched()) emit(stops.flush());
    else result.finish = FinishReason::Stop;
  }
  result.decode_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  return result;
}

}  // namespace whale
