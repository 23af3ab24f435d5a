// The loop of `whale rl`: GRPO with verifiable rewards (docs/rl.md). Each step samples a group of completions per
// problem from the current policy with whale's batched inference, scores them with the task's verifier, and updates
// the policy with the clipped, group-relative objective and a KL penalty to the frozen starting model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "whale/core/thread_pool.h"
#include "whale/train/grpo.h"
#include "whale/train/optimizer.h"
#include "whale/train/rewards.h"
#include "whale/train/rl_tasks.h"
#include "whale/train/rollout.h"

namespace whale::train {

struct RlSettings {
  std::filesystem::path init;  // the starting checkpoint (config.json, weights, tokenizer): policy and reference
  std::filesystem::path out;   // checkpoints, rl_log.jsonl
  bool resume = false;         // continue the run whose checkpoint is in out

  std::string task = "multiplication";  // addition, multiplication, countdown, or a .jsonl file of questions
  TaskOptions task_options;
  int64_t train_problems = 20000;  // generated tasks: problems drawn for training (held-out ones removed)
  int64_t held_out = 500;          // problems held out for evaluation
  uint64_t seed = 0;               // problems, their order, and sampling unless sampling_seed is set
  std::optional<uint64_t> sampling_seed;  // rollouts and reward shuffles only (default: seed); problems stay seed's

  int64_t steps = 100;
  int64_t prompts_per_step = 16;
  RolloutSettings rollout;         // samples_per_problem is G
  GrpoSettings grpo;
  RewardWeights rewards;
  OptimizerSettings optimizer;
  int64_t micro_batch = 32;        // sequences per forward/backward pass
  int updates_per_batch = 1;       // optimizer steps on each step's samples (μ); 1 is on-policy
  RewardShuffle shuffle_rewards = RewardShuffle::Off;  // control run: rewards permuted (see RewardShuffle)
  double bias_update_rate = 0.0;   // γ of the routing-bias balancing during RL (0: off)

  int64_t eval_every = 20;         // 0: only before the first and after the last step
  int eval_samples = 4;            // k of pass@k; pass@1 is the mean accuracy over the k samples
  float eval_temperature = 0.6f;   // R1's evaluation setting
  float eval_top_p = 0.95f;
  int64_t save_every = 0;          // 0: only at the end
  int64_t stop_at = 0;             // > 0: end this run after that many steps (with a checkpoint)
  bool eval_only = false;          // evaluate the --init model on the held-out problems and stop
  std::filesystem::path write_sft;  // write worked examples of the training problems here (.jsonl) and stop
  std::filesystem::path tokenizer;  // --write-sft: the tokenizer's directory (default init)
  int64_t sft_examples = 100000;
  double sft_direct_fraction = 0.0;  // --write-sft: share of examples that answer without working (empty <think>)
};

using RlLog = std::function<void(const std::string&)>;

// Runs GRPO. Writes checkpoints (loadable by every command) and out/rl_log.jsonl: one line per step (reward,
// accuracy, format, KL, response length, entropy) and evaluation lines (held-out pass@1, pass@k, greedy
// accuracy). Throws Error naming the file or option at fault.
void run_rl(const RlSettings& settings, ThreadPool& pool, const RlLog& log);

// Held-out evaluation of one model.
struct RlEval {
  double pass1 = 0;      // mean accuracy over k samples per problem
  double pass_k = 0;     // share of problems with at least one correct sample among k
  double greedy = 0;     // accuracy of the greedy answer
  double format = 0;     // share of well-formed samples
  double mean_length = 0;  // completion tokens per sample
};
RlEval evaluate_policy(const Model& model, const Tokenizer& tokenizer, ThreadPool& pool,
                       std::span<const RlProblem> problems, const RlSettings& settings);

}  // namespace whale::train
