// The whole model's training pass: embedding, decoder layers (MLA + dense MLP or MoE), final norm, LM head and
// cross-entropy, and the MTP module; forward, loss, and backward into ParameterSet's gradients (docs/training.md).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "whale/core/thread_pool.h"
#include "whale/train/mla_train.h"
#include "whale/train/moe_train.h"
#include "whale/train/ops.h"
#include "whale/train/parameters.h"

namespace whale::train {

struct LossWeights {
  float mtp = 0.0f;      // λ of the MTP loss (0: the MTP module is not run)
  float balance = 0.0f;  // α of the sequence-wise balance loss
};

struct BatchLoss {
  double total = 0.0;    // L_main + λ·L_mtp + L_bal
  double main = 0.0;     // mean cross-entropy of the next token
  double mtp = 0.0;      // mean cross-entropy of the token after it (MTP module)
  double balance = 0.0;  // L_bal
  int64_t main_tokens = 0, main_correct = 0;  // argmax hits
  int64_t mtp_tokens = 0, mtp_correct = 0;    // the MTP head's hits on token t+2
};

// Activations of one decoder layer kept for the backward pass.
struct LayerActivations {
  std::vector<float> h_in;         // residual stream entering the layer [N, hidden]
  std::vector<float> x_attn, r_attn;  // input_layernorm output and its 1/rms
  MlaActivations attn;
  std::vector<float> h_mid;        // after the attention residual
  std::vector<float> x_ffn, r_ffn;
  MlpActivations mlp;
  MoeActivations moe;
};

class Transformer {
 public:
  Transformer(ParameterSet& params, ThreadPool& pool);

  // windows: B rows of T + 1 token ids (docs/training.md). Computes the loss; with backward, adds
  // grad_scale · ∂L/∂θ to the parameters' gradients. Throws Error if an id is outside the vocabulary.
  BatchLoss run(std::span<const int32_t> windows, int64_t B, int64_t T, const LossWeights& weights, bool backward,
                float grad_scale = 1.0f);

  // The same pass with `objective` in place of the mean cross-entropy (RL): it sees the log-probabilities of the
  // positions whose `scored` flag is set ([B·T], window-major), in order, and its value is BatchLoss::main and
  // ::total (plus the balance loss). The MTP module is not run.
  BatchLoss run_objective(std::span<const int32_t> windows, int64_t B, int64_t T, std::span<const uint8_t> scored,
                          const TokenObjective& objective, const LossWeights& weights, bool backward,
                          float grad_scale = 1.0f);

  // Expert assignments counted by every run() since the last reset, per layer index (the MTP layer is
  // num_hidden_layers); empty for dense layers.
  const std::vector<std::vector<int64_t>>& expert_counts() const { return expert_counts_; }
  void reset_expert_counts();

 private:
  BatchLoss pass(std::span<const int32_t> windows, int64_t B, int64_t T, const LossWeights& weights, bool backward,
                 float grad_scale, std::span<const uint8_t> scored, const TokenObjective* objective);
  // rope: the run's table, for positions 0..T-1 at least.
  void layer_forward(const TLayer& w, const RopeTable& rope, int64_t B, int64_t T, float alpha, LayerActivations& act,
                     float* h_out,
                     double& balance);
  // dh: gradient w.r.t. the layer's output on entry, w.r.t. its input on return.
  void layer_backward(const TLayer& w, const RopeTable& rope, int64_t B, int64_t T, float alpha,
                      const LayerActivations& act,
                      std::vector<float>& dh);

  ParameterSet& params_;
  ThreadPool& pool_;
  std::vector<double> inv_freq_;
  std::vector<LayerActivations> acts_;  // main layers, then the MTP layer
  std::vector<std::vector<int64_t>> expert_counts_;
};

}  // namespace whale::train
