// A loaded DeepSeek model: config, mapped checkpoint and validated weights, and its forward pass.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "whale/core/thread_pool.h"
#include "whale/io/checkpoint.h"
#include "whale/model/config.h"
#include "whale/model/latent_kv_cache.h"
#include "whale/model/mla.h"
#include "whale/model/router.h"
#include "whale/model/step_phases.h"
#include "whale/model/weights.h"

namespace whale {

// What BF16 weights multiply their inputs with: the activations in f32 (Model's default: the most accurate), or
// rounded to bf16 first (the CLI's default, cli/command.h), as DeepSeek's reference model.py computes, in every
// product (prompts and decode alike, so that a token's result does not depend on its batch). Bf16 makes prompts faster
// where the CPU has the AVX512-BF16 dot instruction and no AMX (AMD Zen 4 and 5; decode runs at the same speed either
// way); elsewhere it changes nothing.
enum class Activations { F32, Bf16 };

// "f32" or "bf16" (throws Error naming the option otherwise).
Activations parse_activations(const std::string& name);

class Model {
 public:
  // Reads DIR/config.json, maps or reads the safetensors as `load` says and validates every tensor. `progress` sees
  // the reading in MiB (FileLoad::Read), then the tensors. Throws Error naming the file at fault.
  explicit Model(const std::filesystem::path& dir, const LoadProgress& progress = nullptr,
                 FileLoad load = FileLoad::Map, Activations activations = Activations::F32);
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  const Checkpoint& checkpoint() const { return checkpoint_; }
  const ModelWeights& weights() const { return weights_; }

  LatentKvCache make_cache(int capacity, int page_tokens = kLatentPageTokens) const;

  // Runs `tokens` at positions cache.size() onward, appends them to the cache and returns their logits
  // [tokens.size(), vocab_size], row-major, or with LogitRows::Last only the last token's [vocab_size] (what
  // generation needs: the LM head then runs once instead of once per prompt token). Feeding a sequence in chunks
  // gives the same logits as one call, bit for bit while every chunk is under 64 tokens (docs/engine.md). Throws
  // Error if a token id is out of range or the cache is too small.
  enum class LogitRows { All, Last, None };  // None: no LM head (a prompt chunk that is not the last)
  // `phases`, when not null, gets the wall time and weight bytes of each phase of the call added to it.
  std::vector<float> forward(std::span<const int32_t> tokens, LatentKvCache& cache, ThreadPool& pool,
                             AttentionForm form = AttentionForm::Absorbed, LogitRows rows = LogitRows::All,
                             StepPhases* phases = nullptr) const;

  // One sequence's part of a batched step: its new tokens, its own cache, which logits it wants.
  struct SequenceStep {
    std::span<const int32_t> tokens;
    LatentKvCache* cache = nullptr;
    LogitRows rows = LogitRows::Last;
  };
  // forward for several sequences in one pass over the weights (continuous batching): every projection and expert
  // runs once over all the steps' tokens; attention runs per sequence over its own cache. Returns each step's
  // logits as forward would. A sequence's logits are bitwise those of running it alone, except with BF16 weights
  // where the batch reaches the AMX prompt path (32+ tokens). Throws Error as forward does, or if two steps share
  // a cache.
  std::vector<std::vector<float>> forward_batch(std::span<const SequenceStep> steps, ThreadPool& pool,
                                                AttentionForm form = AttentionForm::Absorbed,
                                                StepPhases* phases = nullptr) const;

 private:
  ModelConfig config_;
  Checkpoint checkpoint_;
  ModelWeights weights_;
  std::vector<double> rope_inv_freq_;
  RouterFn router_;
};

}  // namespace whale
