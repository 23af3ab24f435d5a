#include "whale/train/rollout.h"

#include <condition_variable>
#include <memory>
#include <mutex>

#include "whale/core/error.h"
#include "whale/runtime/batch_engine.h"
#include "whale/train/rl_sft.h"

namespace whale::train {

std::vector<int32_t> chat_prompt(const Tokenizer& tokenizer, const std::string& question) {
  return tokenizer.encode(chat_prompt_text(tokenizer, question), false);  // the template writes BOS itself
}

std::vector<Rollout> sample_rollouts(const Model& model, const Tokenizer& tokenizer, ThreadPool& pool,
                                     std::span<const RlProblem> problems, const RolloutSettings& s) {
  const int64_t G = s.samples_per_problem, total = static_cast<int64_t>(problems.size()) * G;
  std::vector<Rollout> out(static_cast<size_t>(total));
  if (total == 0) return out;
  size_t longest = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(problems.size()); ++i) {
    const std::vector<int32_t> prompt = chat_prompt(tokenizer, problems[i].question);
    longest = std::max(longest, prompt.size());
    for (int64_t j = 0; j < G; ++j) {
      out[i * G + j].problem = i;
      out[i * G + j].prompt = prompt;
    }
  }
  const int context = static_cast<int>(longest) + s.max_new_tokens + 1;
  if (context > model.config().max_position_embeddings)
    fail("a prompt of {} tokens plus {} new tokens exceeds the model's max_position_embeddings {}", longest,
         s.max_new_tokens, model.config().max_position_embeddings);
  EngineOptions options;
  options.slots = static_cast<int>(std::min<int64_t>(s.slots, total));
  options.context = context;
  options.max_queue = static_cast<int>(total);
  options.prefill_chunk = std::max(256, static_cast<int>(longest) * options.slots);
  options.prefix_cache_tokens = 4096;
  const std::optional<int32_t> eos = tokenizer.eos_id();

  std::mutex mutex;
  std::condition_variable done_cv;
  int64_t done = 0;
  std::string first_error;
  {
    BatchEngine engine(model, tokenizer, pool, options);
    for (int64_t k = 0; k < total; ++k) {
      auto request = std::make_shared<SequenceRequest>();
      request->prompt = out[k].prompt;
      request->sampling.temperature = s.temperature;
      request->sampling.top_p = s.top_p;
      request->sampling.seed = s.seed + static_cast<uint64_t>(k);
      request->options.max_tokens = s.max_new_tokens;
      request->options.skip_special_tokens = false;
      Rollout* r = &out[k];
      request->on_token = [r](std::string_view, const SampledToken& token) {
        r->completion.push_back(token.id);
        return true;
      };
      request->on_done = [&, r](std::string_view, const SequenceOutcome& outcome) {
        r->finish = outcome.finish;
        std::lock_guard lock(mutex);
        if (!outcome.error.empty() && first_error.empty()) first_error = outcome.error;
        ++done;
        done_cv.notify_all();
      };
      if (!engine.submit(std::move(request))) fail("RL sampling: the engine's queue refused sample {}", k);
    }
    std::unique_lock lock(mutex);
    done_cv.wait(lock, [&] { return done == total; });
  }
  if (!first_error.empty()) fail("RL sampling: {}", first_error);
  for (Rollout& r : out) {
    r.text = tokenizer.decode(r.completion, false);
    if (r.finish == FinishReason::Eos && eos) r.completion.push_back(*eos);
  }
  return out;
}

}  // namespace whale::train
