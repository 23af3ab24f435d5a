// The serving engine: continuous batching of many sequences over one model.
//
// Sequences wait in a bounded queue and run in a fixed number of slots, each with its own latent cache. One thread
// (the engine's) loops: it admits queued sequences into free slots, then runs one batched step (Model::forward_batch)
// holding every decoding slot's next token and, within a token budget, chunks of prompts still prefilling, so a long
// prompt never stalls the running decodes for more than one chunk. Every step pushes all active sequences through
// one set of weight reads. A sequence joins or leaves at any step (a token boundary).
//
// Prefix reuse: the latent caches are paged (LatentKvCache), and every whole page a sequence computes goes into a
// PrefixCache shared by all slots, keyed by its tokens. A new sequence goes to the free slot whose own cache shares
// the longest prefix with its prompt; if the shared pages match more of it, the slot takes those pages instead (no
// copy). Only the rest of the prompt is computed (cached_tokens): a system prompt that many requests repeat is
// computed once, whichever slots they run in.
//
// Results do not depend on batching: each sequence gets the tokens it would get alone (Model::forward_batch), with
// its own sampler and seed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "whale/core/thread_pool.h"
#include "whale/model/model.h"
#include "whale/runtime/generator.h"
#include "whale/runtime/prefix_cache.h"
#include "whale/runtime/sampler.h"
#include "whale/tokenizer/tokenizer.h"

namespace whale {

struct SequenceOutcome {
  FinishReason finish = FinishReason::Length;
  int prompt_tokens = 0;
  int cached_tokens = 0;      // prompt tokens found already computed (the slot's cache, shared pages)
  int completion_tokens = 0;  // tokens generated (EOS excluded)
  std::string error;          // set when the sequence failed (finish is then Cancelled)
};

struct SequenceRequest {
  std::vector<int32_t> prompt;  // ids, BOS included if wanted; not empty
  SamplingParams sampling;
  GenerateOptions options;
  // Called on the engine's thread for every generated token, with the text that became final with it (possibly
  // empty: part of a UTF-8 character or of a possible stop string is held back). Returning false cancels.
  std::function<bool(std::string_view text, const SampledToken& token)> on_token;
  // Called once at the end, on the engine's thread, after the last on_token, with any text still held back.
  std::function<void(std::string_view tail, const SequenceOutcome& outcome)> on_done;
  // Set from any thread to cancel (a client that went away); checked before every step.
  std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
};

struct EngineOptions {
  int slots = 4;             // sequences run at once
  int context = 4096;        // tokens per slot (prompt + completion)
  int prefill_chunk = 256;   // most prompt tokens per step, over all slots
  int max_queue = 64;        // sequences waiting for a slot; submit refuses beyond
  int prefix_cache_tokens = 8192;  // tokens of whole pages kept for reuse across sequences (0: none)
  AttentionForm form = AttentionForm::Absorbed;
};

// Counters for /metrics. Monotonic unless marked.
struct EngineStats {
  uint64_t sequences_started = 0, sequences_finished = 0, sequences_cancelled = 0;
  uint64_t prompt_tokens = 0, cached_prompt_tokens = 0, completion_tokens = 0;
  uint64_t steps = 0, step_tokens = 0;  // batched steps run, and tokens in them
  int queue_depth = 0;                  // now
  int active = 0;                       // now: slots running a sequence
  int last_batch = 0;                   // sequences in the last step
  int prefix_cache_tokens = 0;          // now: tokens held by the prefix cache's pages
  double busy_seconds = 0;              // time spent in steps
};

class BatchEngine {
 public:
  // Starts the engine thread. The model, tokenizer and pool must outlive the engine; the pool is used only from the
  // engine's thread. Throws Error on options out of range.
  BatchEngine(const Model& model, const Tokenizer& tokenizer, ThreadPool& pool, EngineOptions options);
  ~BatchEngine();  // cancels everything queued or running (their on_done runs) and joins the thread
  BatchEngine(const BatchEngine&) = delete;
  BatchEngine& operator=(const BatchEngine&) = delete;

  // Queues a sequence. Returns false (and calls nothing) when the queue is full. Throws Error if the prompt is empty
  // or does not fit the context, or the sampling parameters are out of range.
  bool submit(std::shared_ptr<SequenceRequest> request);

  EngineStats stats() const;
  const EngineOptions& options() const { return options_; }

 private:
  struct Slot;
  void loop();
  void admit();
  void step();
  void finish(Slot& slot, FinishReason reason, const std::string& error = {});
  // Ends a sequence that never reached a slot.
  static void cancel_unstarted(SequenceRequest& request);

  const Model& model_;
  const Tokenizer& tokenizer_;
  ThreadPool& pool_;
  EngineOptions options_;
  std::optional<int32_t> eos_;
  int sampled_vocab_ = 0;  // writable_vocab

  mutable std::mutex mutex_;  // guards queue_, stopping_, stats_
  std::condition_variable wake_;
  std::deque<std::shared_ptr<SequenceRequest>> queue_;
  bool stopping_ = false;
  EngineStats stats_;

  std::vector<std::unique_ptr<Slot>> slots_;  // touched by the engine thread only
  PrefixCache prefix_;                        // likewise
  std::thread thread_;
};

}  // namespace whale
