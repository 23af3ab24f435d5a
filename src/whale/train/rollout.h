// Sampling for RL: groups of completions per problem from a policy, through the serving engine's continuous
// batching (runtime/batch_engine.h), so every decode step pushes all unfinished samples through one weight read and
// a group's shared prompt is computed once (prefix cache).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "whale/core/thread_pool.h"
#include "whale/model/model.h"
#include "whale/runtime/generator.h"
#include "whale/tokenizer/tokenizer.h"
#include "whale/train/rl_tasks.h"

namespace whale::train {

struct RolloutSettings {
  int samples_per_problem = 8;  // G
  float temperature = 1.0f;     // 0: greedy (then every sample of a problem is the same)
  float top_p = 1.0f;
  int max_new_tokens = 256;
  int slots = 32;               // sequences decoded at once
  uint64_t seed = 0;            // sample j of problem i uses seed + i · samples_per_problem + j
};

struct Rollout {
  int64_t problem = 0;               // index into the problems given
  std::vector<int32_t> prompt;       // chat-templated question, BOS included
  std::vector<int32_t> completion;   // sampled ids, ending with EOS when the model ended there
  std::string text;                  // the completion decoded, special tokens kept (</think> is one)
  FinishReason finish = FinishReason::Length;
};

// The prompt ids of `question` as one user turn of the tokenizer's chat template, with the generation prompt (R1's
// opens <think>). Throws Error if the tokenizer has no chat template.
std::vector<int32_t> chat_prompt(const Tokenizer& tokenizer, const std::string& question);

// samples_per_problem completions of every problem, in order (problem 0's samples first). Throws Error if a prompt
// does not fit max_position_embeddings with max_new_tokens.
std::vector<Rollout> sample_rollouts(const Model& model, const Tokenizer& tokenizer, ThreadPool& pool,
                                     std::span<const RlProblem> problems, const RolloutSettings& settings);

}  // namespace whale::train
