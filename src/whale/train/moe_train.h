// Feed-forward blocks for training, forward and backward: the SwiGLU MLP (dense layers, shared experts) and the MoE
// layer (router, routed experts, shared experts, sequence-wise balance loss). Routing selects exactly as inference
// does (model/router.h); gradients reach the router only through the selected experts' gate weights.
#pragma once

#include <cstdint>
#include <vector>

#include "whale/core/thread_pool.h"
#include "whale/model/config.h"
#include "whale/train/parameters.h"

namespace whale::train {

struct MlpActivations {
  std::vector<float> g, u, h;  // [N, inter]: gate · x, up · x, silu(g) ⊙ u
};

// out[N, hidden] (= or +=) down · (silu(gate · x) ⊙ up · x).
void mlp_forward(ThreadPool* pool, const TMlp& w, const float* x, int64_t N, MlpActivations& act, float* out,
                 bool accumulate = false);
// dx (= or +=) ∂L/∂x; adds the weights' gradients.
void mlp_backward(ThreadPool* pool, const TMlp& w, const float* x, int64_t N, const MlpActivations& act,
                  const float* dout, float* dx, bool accumulate_dx = false);

struct MoeActivations {
  std::vector<float> scores;            // [N, E] router scores (softmax or sigmoid), without the bias
  std::vector<int32_t> ids;             // [N, K] selected experts
  std::vector<float> weights;           // [N, K] their gate weights
  std::vector<std::vector<int32_t>> assignments;  // per expert: the (n·K + k) it serves, in order
  std::vector<int32_t> slot;            // [N, K]: position of (n, k) in its expert's list
  std::vector<MlpActivations> experts;  // per expert, over its rows
  std::vector<std::vector<float>> expert_out;  // per expert [rows, hidden], before the gate weight
  MlpActivations shared;
  std::vector<int64_t> counts;          // [E] assignments per expert
  std::vector<float> balance_f;         // [B, E] f_i of the sequence-wise balance loss (empty when α = 0)
};

// out[N, hidden] = MoE(x) for N = B·T rows (B windows of T). Returns the sequence-wise balance loss
// α · mean_b Σ_i f_i P_i (0 when balance_alpha is 0; docs/training.md).
double moe_forward(ThreadPool& pool, const TMoe& w, const ModelConfig& c, const float* x, int64_t B, int64_t T,
                   float balance_alpha, MoeActivations& act, float* out);
// dx = ∂L/∂x from dout and the balance loss; adds the weights' gradients (never the bias's).
void moe_backward(ThreadPool& pool, const TMoe& w, const ModelConfig& c, const float* x, int64_t B, int64_t T,
                  float balance_alpha, const MoeActivations& act, const float* dout, float* dx);

}  // namespace whale::train
