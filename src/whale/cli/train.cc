// whale train: trains a DeepSeek-architecture model from scratch (--config) or from a checkpoint (--init) and writes
// Hugging Face checkpoints that whale runs. docs/training.md is the contract of the math and the batch layout.
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "whale/cli/command.h"
#include "whale/core/error.h"
#include "whale/train/trainer.h"

namespace whale::cli {
namespace {

struct TrainOptions {
  train::TrainSettings s;
  std::string optimizer = "adamw";
  std::string order = "random";
  int threads = 0;
};

void run_train(TrainOptions& opt) {
  train::TrainSettings& s = opt.s;
  if (s.config.empty() == s.init.empty() && !s.resume)
    fail("give exactly one of --config MODEL.json (a new model) and --init DIR (start from a checkpoint)");
  s.optimizer.kind = opt.optimizer == "sgd" ? train::OptimizerKind::Sgd : train::OptimizerKind::AdamW;
  s.order = opt.order == "sequential" ? train::DataOrder::Sequential : train::DataOrder::Random;
  if (s.optimizer.warmup > s.optimizer.steps) fail("--warmup {} exceeds --steps {}", s.optimizer.warmup, s.optimizer.steps);
  ThreadPool pool(opt.threads);
  train::run_training(s, pool, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
}

}  // namespace

Command register_train(CLI::App& root) {
  auto opt = std::make_shared<TrainOptions>();
  train::TrainSettings& s = opt->s;
  CLI::App* app = root.add_subcommand(
      "train", "Train a DeepSeek-architecture model (MLA, MoE with bias balancing, MTP) on a text corpus");
  app->footer("The loss, batch layout and optimizer are specified in docs/training.md.");
  app->add_option("--config", s.config, "config.json of a new model (random initial weights)");
  app->add_option("--init", s.init, "Start from this checkpoint directory (its config.json and weights)");
  app->add_option("--data", s.data, ".txt file, or .jsonl with one {\"text\": ...} or {\"input_ids\": [...]} per line")
      ->required();
  app->add_option("--tokenizer", s.tokenizer,
                  "Directory with tokenizer.json (default: the --init directory); copied into the checkpoints");
  app->add_option("--out", s.out, "Directory for checkpoints and train_log.jsonl")->required();
  app->add_flag("--resume", s.resume, "Continue the run whose checkpoint is in --out");
  app->add_option("--steps", s.optimizer.steps, "Optimizer steps (default 1)")->check(at_least(1));
  app->add_option("--batch-size", s.batch_size, "Windows per micro-batch (default 8)")->check(at_least(1));
  app->add_option("--seq-len", s.seq_len, "Tokens per window (default 128)")->check(at_least(1));
  app->add_option("--grad-accum", s.grad_accum, "Micro-batches per step (default 1)")->check(at_least(1));
  app->add_option("--optimizer", opt->optimizer, "adamw (default) or sgd (plain w -= lr·g, for external checks)")
      ->check(CLI::IsMember({"adamw", "sgd"}));
  app->add_option("--lr", s.optimizer.lr, "Peak learning rate (default 1e-3)")->check(at_least(0));
  app->add_option("--min-lr-ratio", s.optimizer.min_lr_ratio, "Cosine decay ends at lr × this (default 0.1)")
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--warmup", s.optimizer.warmup, "Linear warmup steps (default 0)")->check(at_least(0));
  app->add_option("--beta1", s.optimizer.beta1, "AdamW β1 (default 0.9)")->check(CLI::Range(0.0, 1.0));
  app->add_option("--beta2", s.optimizer.beta2, "AdamW β2 (default 0.95)")->check(CLI::Range(0.0, 1.0));
  app->add_option("--eps", s.optimizer.eps, "AdamW ε (default 1e-8)")->check(at_least(0));
  app->add_option("--weight-decay", s.optimizer.weight_decay, "AdamW decoupled weight decay of matrices (default 0.1)")
      ->check(at_least(0));
  app->add_option("--clip", s.optimizer.clip, "Clip the global gradient norm to this; 0 = off (default 1.0)")
      ->check(at_least(0));
  app->add_option("--mtp-weight", s.loss.mtp, "λ of the MTP loss; needs num_nextn_predict_layers = 1 (default 0)")
      ->check(at_least(0));
  app->add_option("--balance-alpha", s.loss.balance, "α of the sequence-wise balance loss (default 0)")
      ->check(at_least(0));
  app->add_option("--bias-update-rate", s.bias_update_rate,
                  "γ of auxiliary-loss-free balancing; 0 = off (default 0.001)")
      ->check(at_least(0));
  app->add_option("--val-fraction", s.val_fraction, "Share of the tokens held out for validation (default 0.05)")
      ->check(CLI::Range(0.0, 0.9));
  app->add_option("--eval-every", s.eval_every, "Validate every N steps; 0 = only at the end (default 100)")
      ->check(at_least(0));
  app->add_option("--eval-windows", s.eval_windows, "Validation windows per evaluation (default 64)")
      ->check(at_least(1));
  app->add_option("--save-every", s.save_every, "Write a checkpoint every N steps; 0 = only at the end (default 0)")
      ->check(at_least(0));
  app->add_option("--stop-at", s.stop_at,
                  "End this run after step N, with a checkpoint; --resume continues it (the LR schedule spans --steps)")
      ->check(at_least(1));
  app->add_option("--log-every", s.log_every, "Print a progress line every N steps (default 1)")->check(at_least(1));
  app->add_option("--data-order", opt->order, "random (default) or sequential windows (docs/training.md)")
      ->check(CLI::IsMember({"random", "sequential"}));
  app->add_option("--seed", s.seed, "Seed of the initial weights and the data order (default 0)");
  app->add_option("--init-std", s.init_std, "Standard deviation of new weights (default 0.02)")->check(at_least(0));
  app->add_option("--dump-grads", s.dump_gradients, "Write step 1's gradients to this safetensors file (F32)");
  app->add_option("--threads", opt->threads, "Worker threads (default: one per CPU)")->check(at_least(0));
  return {app, [opt] { run_train(*opt); }};
}

}  // namespace whale::cli
