// The training loop of `whale train`: data, steps of gradient accumulation, optimizer, routing-bias balancing,
// validation, logging, checkpoints and resume.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "whale/core/thread_pool.h"
#include "whale/train/dataset.h"
#include "whale/train/optimizer.h"
#include "whale/train/transformer.h"

namespace whale::train {

struct TrainSettings {
  std::filesystem::path config;     // MODEL.json for a model from scratch, or empty with init
  std::filesystem::path init;       // a checkpoint to start from (its config.json is the model's)
  std::filesystem::path data;
  std::filesystem::path tokenizer;  // a directory with tokenizer.json (copied into every checkpoint)
  std::filesystem::path out;
  bool resume = false;              // continue from the checkpoint in out
  std::filesystem::path dump_gradients;  // write step 0's gradients here (for checks against another autograd)

  int64_t batch_size = 8;
  int64_t seq_len = 128;
  int64_t grad_accum = 1;
  double val_fraction = 0.05;
  DataOrder order = DataOrder::Random;
  uint64_t seed = 0;
  double init_std = 0.02;

  OptimizerSettings optimizer;
  LossWeights loss;
  double bias_update_rate = 0.001;

  int64_t eval_every = 100;     // 0: only at the end
  int64_t eval_windows = 64;    // validation windows per evaluation
  int64_t save_every = 0;       // 0: only at the end
  int64_t stop_at = 0;          // > 0: end this run after that many steps (the schedule still spans all steps)
  int64_t log_every = 1;
};

// A line of progress for the user (stderr in the CLI).
using TrainLog = std::function<void(const std::string&)>;

// Runs the whole training. Writes checkpoints to settings.out and a log of every step to out/train_log.jsonl.
// Throws Error naming the file or option at fault.
void run_training(const TrainSettings& settings, ThreadPool& pool, const TrainLog& log);

}  // namespace whale::train
