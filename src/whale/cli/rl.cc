// whale rl: R1-Zero-style GRPO on tasks with verifiable answers, starting from a checkpoint (docs/rl.md).
#include <cstdio>
#include <memory>
#include <string>

#include "whale/cli/command.h"
#include "whale/core/error.h"
#include "whale/train/rl.h"

namespace whale::cli {
namespace {

struct RlOptions {
  train::RlSettings s;
  int threads = 0;
};

void run_rl(RlOptions& opt) {
  train::RlSettings& s = opt.s;
  if (s.init.empty() && !s.resume && s.write_sft.empty())
    fail("give --init DIR (the model to start from) or --resume");
  if (s.out.empty() && !s.eval_only && s.write_sft.empty()) fail("give --out DIR for the checkpoints and rl_log.jsonl");
  if (s.optimizer.warmup > s.steps) fail("--warmup {} exceeds --steps {}", s.optimizer.warmup, s.steps);
  if (s.task_options.min_digits > s.task_options.max_digits)
    fail("--min-digits {} exceeds --max-digits {}", s.task_options.min_digits, s.task_options.max_digits);
  ThreadPool pool(opt.threads);
  train::run_rl(s, pool, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
}

}  // namespace

Command register_rl(CLI::App& root) {
  auto opt = std::make_shared<RlOptions>();
  train::RlSettings& s = opt->s;
  s.optimizer.lr = 1e-4;
  s.optimizer.min_lr_ratio = 1.0;
  s.optimizer.weight_decay = 0.0;
  CLI::App* app = root.add_subcommand(
      "rl", "Reinforcement learning with verifiable rewards (GRPO, as DeepSeek-R1-Zero) from a checkpoint");
  app->footer("The objective, rewards, tasks and evaluation are specified in docs/rl.md.");
  app->add_option("--init", s.init, "Checkpoint to start from: the initial policy and the KL reference");
  app->add_option("--out", s.out, "Directory for checkpoints and rl_log.jsonl (required unless --eval-only)");
  app->add_flag("--eval-only", s.eval_only,
                "Only evaluate the --init model on the held-out problems; prints the evaluation as JSON");
  app->add_flag("--resume", s.resume, "Continue the run whose checkpoint is in --out");
  app->add_option("--task", s.task,
                  "addition, multiplication, countdown, or a .jsonl file of {\"question\", \"answer\", \"verifier\"} "
                  "lines (default multiplication)");
  app->add_option("--write-sft", s.write_sft,
                  "Write worked examples (reasoning in <think>, then the answer) of the training problems to this "
                  ".jsonl for `whale train`, and stop; the held-out problems never appear in it");
  app->add_option("--tokenizer", s.tokenizer, "--write-sft: directory with the tokenizer (default: --init)");
  app->add_option("--sft-examples", s.sft_examples, "Worked examples --write-sft writes (default 100000)")
      ->check(at_least(1));
  app->add_option("--sft-direct-fraction", s.sft_direct_fraction,
                  "Share of --write-sft examples that answer at once, with an empty <think> (default 0: all worked)")
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--min-digits", s.task_options.min_digits, "Fewest digits of an operand (default 1)")
      ->check(CLI::Range(1, 18));
  app->add_option("--max-digits", s.task_options.max_digits, "Most digits of an operand (default 3)")
      ->check(CLI::Range(1, 18));
  app->add_option("--countdown-numbers", s.task_options.countdown_numbers,
                  "Numbers per countdown problem (default 4)")
      ->check(CLI::Range(2, 6));
  app->add_option("--train-problems", s.train_problems, "Generated problems to train on (default 20000)")
      ->check(at_least(1));
  app->add_option("--held-out", s.held_out, "Problems held out for evaluation (default 500)")->check(at_least(1));
  app->add_option("--seed", s.seed,
                  "Seed of the problems, their order and (without --sampling-seed) the sampling (default 0)");
  app->add_option("--sampling-seed", s.sampling_seed,
                  "Seed of the rollouts and reward shuffles only (default: --seed), so that runs on other seeds keep "
                  "the same problems and held-out set");
  app->add_option("--steps", s.steps, "GRPO steps (default 100)")->check(at_least(1));
  app->add_option("--prompts", s.prompts_per_step, "Problems per step (default 16)")->check(at_least(1));
  app->add_option("--group", s.rollout.samples_per_problem, "Samples per problem, G (default 8)")
      ->check(CLI::Range(2, 256));
  app->add_option("--temperature", s.rollout.temperature, "Sampling temperature of the rollouts (default 1.0)")
      ->check(CLI::Range(0.01, 10.0));
  app->add_option("--top-p", s.rollout.top_p, "Nucleus sampling of the rollouts (default 1.0)")
      ->check(CLI::Range(0.01, 1.0));
  app->add_option("--max-new-tokens", s.rollout.max_new_tokens, "Longest completion (default 256)")
      ->check(CLI::Range(1, 1 << 20));
  app->add_option("--slots", s.rollout.slots, "Sequences sampled at once (default 32)")->check(CLI::Range(1, 4096));
  app->add_option("--clip-eps", s.grpo.clip_eps, "ε of the clipped ratio (default 0.2)")->check(CLI::Range(0.0, 1.0));
  app->add_option("--beta", s.grpo.beta, "β of the k3 KL penalty to the starting model; 0 = off (default 0.04)")
      ->check(at_least(0));
  app->add_option("--format-reward", s.rewards.format,
                  "Reward for a well-formed <think>…</think> answer (default 0.1; accuracy counts 1)")
      ->check(at_least(0));
  app->add_option("--lr", s.optimizer.lr, "Learning rate (default 1e-4)")->check(at_least(0));
  app->add_option("--warmup", s.optimizer.warmup, "Linear warmup steps (default 0)")->check(at_least(0));
  app->add_option("--min-lr-ratio", s.optimizer.min_lr_ratio,
                  "Cosine decay ends at lr × this; 1 = constant (default 1)")
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--weight-decay", s.optimizer.weight_decay, "AdamW decoupled weight decay (default 0)")
      ->check(at_least(0));
  app->add_option("--clip", s.optimizer.clip, "Clip the global gradient norm to this; 0 = off (default 1.0)")
      ->check(at_least(0));
  app->add_option("--updates-per-batch", s.updates_per_batch,
                  "Optimizer steps on each step's samples (μ); beyond 1 the ratio to the sampling policy and its clip "
                  "come into play (default 1)")
      ->check(CLI::Range(1, 64));
  app->add_option("--micro-batch", s.micro_batch, "Sequences per forward/backward pass (default 32)")
      ->check(at_least(1));
  app->add_option("--bias-update-rate", s.bias_update_rate, "γ of routing-bias balancing during RL (default 0)")
      ->check(at_least(0));
  auto* shuffle_step =
      app->add_flag_function(
             "--shuffle-rewards", [&s](int64_t) { s.shuffle_rewards = train::RewardShuffle::Step; },
             "Control run: permute the rewards across all of each step's samples (learning should stay flat)");
  app->add_flag_function(
         "--shuffle-rewards-in-groups", [&s](int64_t) { s.shuffle_rewards = train::RewardShuffle::Group; },
         "Control run: permute the rewards within each group only, so every group keeps its advantages and only "
         "which sample earned which is lost (learning should stay flat)")
      ->excludes(shuffle_step);
  app->add_option("--eval-every", s.eval_every,
                  "Evaluate on the held-out problems every N steps; 0 = before and after only (default 20)")
      ->check(at_least(0));
  app->add_option("--eval-samples", s.eval_samples, "k of pass@k (default 4)")->check(CLI::Range(1, 256));
  app->add_option("--eval-temperature", s.eval_temperature, "Sampling temperature of evaluation (default 0.6)")
      ->check(CLI::Range(0.01, 10.0));
  app->add_option("--save-every", s.save_every, "Write a checkpoint every N steps; 0 = only at the end (default 0)")
      ->check(at_least(0));
  app->add_option("--stop-at", s.stop_at, "End this run after step N, with a checkpoint; --resume continues it")
      ->check(at_least(1));
  app->add_option("--threads", opt->threads, "Worker threads (default: one per CPU)")->check(at_least(0));
  return {app, [opt] { run_rl(*opt); }};
}

}  // namespace whale::cli
