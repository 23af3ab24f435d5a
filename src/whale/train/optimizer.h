// AdamW (PyTorch semantics) and plain SGD over a ParameterSet, gradient clipping, the warmup + cosine learning-rate
// schedule, and routing-bias balancing (docs/training.md, "Optimizer" and "Balancing by the routing bias").
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "whale/core/thread_pool.h"
#include "whale/train/parameters.h"

namespace whale::train {

enum class OptimizerKind { AdamW, Sgd };

struct OptimizerSettings {
  OptimizerKind kind = OptimizerKind::AdamW;
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double weight_decay = 0.1;
  double clip = 1.0;          // 0: no clipping
  int64_t warmup = 0;
  int64_t steps = 1;
  double min_lr_ratio = 0.1;
};

// Learning rate of step s (from 0): linear warmup, then cosine to lr · min_lr_ratio.
double learning_rate(const OptimizerSettings& o, int64_t s);

class Optimizer {
 public:
  Optimizer(ParameterSet& params, const OptimizerSettings& settings, ThreadPool& pool);

  // Clips (AdamW) and applies one update at step s with the gradients in params; returns the gradient norm before
  // clipping. Buffers (trainable = false) are left alone.
  double step(int64_t s);

  // Adam moments and step count, for checkpoints (empty for SGD).
  std::vector<float>& first_moment() { return m_; }
  std::vector<float>& second_moment() { return v_; }

  // The Adam moments as F32 tensors adam.m and adam.v of one safetensors file (nothing for SGD). load_moments
  // throws Error naming the file when a tensor is missing or does not match the parameter count.
  void save_moments(const std::filesystem::path& file) const;
  void load_moments(const std::filesystem::path& file);

 private:
  ParameterSet& params_;
  OptimizerSettings o_;
  ThreadPool& pool_;
  std::vector<float> m_, v_;
};

// b_i -= γ where expert i had more than the mean count, += γ where fewer (counts: one layer's assignments).
void update_routing_bias(float* bias, const std::vector<int64_t>& counts, double gamma);
// max_i c_i / mean(c) − 1 (0 when nothing was routed).
double max_violation(const std::vector<int64_t>& counts);

}  // namespace whale::train
