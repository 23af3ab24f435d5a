#include "whale/runtime/batch_engine.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "whale/core/error.h"

namespace whale {

// One running sequence and the cache it runs in. The cache outlives sequences: its tokens (`cached`) are the prefix
// a later sequence may reuse.
struct BatchEngine::Slot {
  LatentKvCache cache;
  std::vector<int32_t> cached;  // tokens whose entries are in cache (its first cache.size())

  std::shared_ptr<SequenceRequest> request;  // null: free
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<StreamingDecoder> decoder;
  std::unique_ptr<StopStringFilter> stops;
  std::vector<int32_t> history;  // prompt + generated, for penalties
  size_t prefilled = 0;          // prompt tokens in the cache
  size_t offered_pages = 0;      // whole pages of the cache already offered to the prefix cache
  int32_t next = -1;             // sampled token not yet run through the model (decoding)
  SequenceOutcome outcome;

  explicit Slot(LatentKvCache c) : cache(std::move(c)) {}
  bool busy() const { return request != nullptr; }
  bool prefilling() const { return busy() && prefilled < request->prompt.size(); }
};

BatchEngine::BatchEngine(const Model& model, const Tokenizer& tokenizer, ThreadPool& pool, EngineOptions options)
    : model_(model),
      tokenizer_(tokenizer),
      pool_(pool),
      options_(options),
      prefix_(kLatentPageTokens, static_cast<size_t>(std::max(0, options.prefix_cache_tokens)) / kLatentPageTokens) {
  if (options_.slots < 1) fail("slots = {} must be at least 1", options_.slots);
  if (options_.context < 2) fail("context = {} must be at least 2", options_.context);
  if (options_.prefill_chunk < 1) fail("prefill_chunk = {} must be at least 1", options_.prefill_chunk);
  if (options_.max_queue < 0) fail("max_queue = {} must not be negative", options_.max_queue);
  if (options_.prefix_cache_tokens < 0)
    fail("prefix_cache_tokens = {} must not be negative", options_.prefix_cache_tokens);
  eos_ = end_of_sequence_id(model_, tokenizer_);
  sampled_vocab_ = writable_vocab(model_, tokenizer_);
  for (int i = 0; i < options_.slots; ++i) slots_.push_back(std::make_unique<Slot>(model_.make_cache(options_.context)));
  thread_ = std::thread([this] { loop(); });
}

BatchEngine::~BatchEngine() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool BatchEngine::submit(std::shared_ptr<SequenceRequest> request) {
  if (request->prompt.empty()) fail("the prompt is empty");
  if (static_cast<int>(request->prompt.size()) >= options_.context)
    fail("the prompt is {} tokens; the context holds {}", request->prompt.size(), options_.context);
  validate(request->sampling);
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || static_cast<int>(queue_.size()) >= options_.max_queue) return false;
    queue_.push_back(std::move(request));
    stats_.queue_depth = static_cast<int>(queue_.size());
  }
  wake_.notify_all();
  return true;
}

EngineStats BatchEngine::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void BatchEngine::loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      const auto any_busy = [&] {
        return std::any_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->busy(); });
      };
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || any_busy(); });
      if (stopping_) {
        for (auto& r : queue_) r->cancelled->store(true);
        lock.unlock();
        for (auto& s : slots_)
          if (s->busy()) finish(*s, FinishReason::Cancelled);
        std::deque<std::shared_ptr<SequenceRequest>> left;
        {
          std::lock_guard again(mutex_);
          left.swap(queue_);
        }
        for (auto& r : left) cancel_unstarted(*r);
        return;
      }
    }
    admit();
    step();
  }
}

// Moves queued sequences into free slots, each to the free slot whose cached tokens share the longest prefix with
// its prompt (ties: the first), which takes the prefix cache's pages instead where they match more. Sequences
// cancelled while queued finish at once.
void BatchEngine::admit() {
  for (;;) {
    std::shared_ptr<SequenceRequest> r;
    Slot* best = nullptr;
    size_t best_keep = 0;
    std::vector<std::shared_ptr<LatentPage>> shared;  // prefix-cache pages the slot takes, if they match more
    {
      std::lock_guard lock(mutex_);
      if (queue_.empty()) return;
      r = queue_.front();
      if (!r->cancelled->load()) {
        for (auto& s : slots_) {
          if (s->busy()) continue;
          const size_t keep = reusable_prefix(s->cached, r->prompt);
          if (!best || keep > best_keep) best = s.get(), best_keep = keep;
        }
        if (!best) return;  // no free slot
        shared = prefix_.match(r->prompt);
        // At least the prompt's last token runs, for its logits.
        const size_t from_pages = std::min(shared.size() * kLatentPageTokens, r->prompt.size() - 1);
        if (from_pages > best_keep) best_keep = from_pages;
        else shared.clear();
      }
      queue_.pop_front();
      stats_.queue_depth = static_cast<int>(queue_.size());
      if (best) {
        ++stats_.active;
        ++stats_.sequences_started;
        stats_.prompt_tokens += r->prompt.size();
        stats_.cached_prompt_tokens += best_keep;
      }
    }
    if (!best) {  // cancelled while queued
      cancel_unstarted(*r);
      std::lock_guard lock(mutex_);
      ++stats_.sequences_cancelled;
      continue;
    }
    Slot& s = *best;
    s.request = r;
    if (!shared.empty()) s.cache.share(shared, static_cast<int>(best_keep));
    else s.cache.truncate(static_cast<int>(best_keep));
    s.offered_pages = best_keep / kLatentPageTokens;
    s.cached.assign(r->prompt.begin(), r->prompt.begin() + static_cast<std::ptrdiff_t>(best_keep));
    s.prefilled = best_keep;
    s.next = -1;
    s.sampler = std::make_unique<Sampler>(r->sampling);
    s.decoder = std::make_unique<StreamingDecoder>(tokenizer_, r->options.skip_special_tokens);
    s.stops = std::make_unique<StopStringFilter>(r->options.stop);
    s.history = r->prompt;
    s.outcome = SequenceOutcome{};
    s.outcome.prompt_tokens = static_cast<int>(r->prompt.size());
    s.outcome.cached_tokens = static_cast<int>(best_keep);
  }
}

void BatchEngine::cancel_unstarted(SequenceRequest& r) {
  SequenceOutcome o;
  o.finish = FinishReason::Cancelled;
  o.prompt_tokens = static_cast<int>(r.prompt.size());
  if (r.on_done) r.on_done("", o);
}

void BatchEngine::finish(Slot& s, FinishReason reason, const std::string& error) {
  s.outcome.finish = reason;
  s.outcome.error = error;
  std::string tail;
  if (reason != FinishReason::Cancelled && reason != FinishReason::Stop && s.decoder) {
    tail = s.stops->push(s.decoder->finish());
    if (!s.stops->matched()) tail += s.stops->flush();
    else s.outcome.finish = FinishReason::Stop;
  }
  std::shared_ptr<SequenceRequest> r = std::move(s.request);
  s.request = nullptr;
  s.sampler.reset();
  s.decoder.reset();
  s.stops.reset();
  s.next = -1;
  {
    std::lock_guard lock(mutex_);
    ++stats_.sequences_finished;
    --stats_.active;
    if (s.outcome.finish == FinishReason::Cancelled) ++stats_.sequences_cancelled;
    stats_.completion_tokens += static_cast<uint64_t>(s.outcome.completion_tokens);
  }
  if (r->on_done) r->on_done(tail, s.outcome);
}

// One batched step: every decoding slot's pending token, plus prompt chunks within the budget.
void BatchEngine::step() {
  using clock = std::chrono::steady_clock;
  for (auto& s : slots_)
    if (s->busy() && s->request->cancelled->load()) finish(*s, FinishReason::Cancelled);

  // The steps' tokens stay where they are: in the prompt, or the slot's pending token.
  std::vector<Model::SequenceStep> steps;
  std::vector<Slot*> stepped;
  int budget = options_.prefill_chunk;
  for (auto& sp : slots_) {
    Slot& s = *sp;
    if (!s.busy()) continue;
    if (s.prefilling()) {
      if (budget == 0) continue;
      const size_t left = s.request->prompt.size() - s.prefilled;
      const size_t n = std::min(left, static_cast<size_t>(budget));
      budget -= static_cast<int>(n);
      steps.push_back({std::span(s.request->prompt).subspan(s.prefilled, n), &s.cache,
                       n == left ? Model::LogitRows::Last : Model::LogitRows::None});
    } else {
      steps.push_back({std::span(&s.next, 1), &s.cache, Model::LogitRows::Last});
    }
    stepped.push_back(&s);
  }
  if (steps.empty()) return;

  const auto t0 = clock::now();
  std::vector<std::vector<float>> logits;
  try {
    logits = model_.forward_batch(steps, pool_, options_.form);
  } catch (const std::exception& e) {
    for (Slot* s : stepped) finish(*s, FinishReason::Cancelled, e.what());
    return;
  }
  {
    std::lock_guard lock(mutex_);
    ++stats_.steps;
    for (const auto& st : steps) stats_.step_tokens += st.tokens.size();
    stats_.last_batch = static_cast<int>(steps.size());
    stats_.busy_seconds += std::chrono::duration<double>(clock::now() - t0).count();
  }

  const int vocab = model_.config().vocab_size;
  // Sequences that sample a token this step: their slot and their row of the step.
  struct Pick {
    Slot* slot;
    size_t index;
    SampledToken token{};
    std::optional<std::string> error{};  // set when the sampler threw
  };
  std::vector<Pick> picks;
  for (size_t i = 0; i < stepped.size(); ++i) {
    Slot& s = *stepped[i];
    const Model::SequenceStep& st = steps[i];
    s.cached.insert(s.cached.end(), st.tokens.begin(), st.tokens.end());
    if (static_cast<size_t>(s.cache.size()) / kLatentPageTokens > s.offered_pages) {
      prefix_.insert(s.cached, s.cache);
      s.offered_pages = static_cast<size_t>(s.cache.size()) / kLatentPageTokens;
      std::lock_guard lock(mutex_);
      stats_.prefix_cache_tokens = static_cast<int>(prefix_.pages()) * kLatentPageTokens;
    }
    if (s.prefilling()) {
      s.prefilled += st.tokens.size();
      if (s.prefilling()) continue;  // more prompt to go
    }
    const GenerateOptions& opt = s.request->options;
    if (opt.max_tokens && s.outcome.completion_tokens >= *opt.max_tokens) {
      finish(s, FinishReason::Length);
      continue;
    }
    picks.push_back({&s, i});
  }

  // Each sequence's sampler is its own (parameters, random state, buffers): they run side by side on the pool, which
  // with 16 sequences takes a vocabulary-wide pass per sequence (and, when sampling, its exponentials) off the
  // engine thread's serial path. Results and callbacks then go out in slot order on this thread.
  pool_.parallel_for(static_cast<int64_t>(picks.size()), [&](int64_t a, int64_t b) {
    for (int64_t k = a; k < b; ++k) {
      Pick& p = picks[k];
      const std::vector<float>& z = logits[p.index];
      try {
        p.token = p.slot->sampler->sample(std::span<const float>(z.data() + z.size() - vocab, sampled_vocab_),
                                          p.slot->history);
      } catch (const std::exception& e) {
        p.error = e.what();
      }
    }
  });

  for (Pick& p : picks) {
    Slot& s = *p.slot;
    const GenerateOptions& opt = s.request->options;
    if (p.error) {  // a sequence's failure ends it, not the engine
      finish(s, FinishReason::Cancelled, *p.error);
      continue;
    }
    const SampledToken& next = p.token;
    std::string text;
    const bool ended = eos_ && next.id == *eos_ && !opt.ignore_eos;  // at EOS
    try {
      if (!ended) text = s.stops->push(s.decoder->push(next.id));
    } catch (const std::exception& e) {
      finish(s, FinishReason::Cancelled, e.what());
      continue;
    }
    if (ended) {
      finish(s, FinishReason::Eos);
      continue;
    }
    ++s.outcome.completion_tokens;
    s.history.push_back(next.id);
    if (s.request->on_token && !s.request->on_token(text, next)) {
      finish(s, FinishReason::Cancelled);
      continue;
    }
    if (s.stops->matched()) {
      finish(s, FinishReason::Stop);
      continue;
    }
    if (opt.max_tokens && s.outcome.completion_tokens >= *opt.max_tokens) {
      finish(s, FinishReason::Length);
      continue;
    }
    if (s.cache.size() >= options_.context) {
      finish(s, FinishReason::Context);
      continue;
    }
    s.next = next.id;
  }
}

}  // namespace whale
