// Multi-head Latent Attention for training: the expanded form (kv_b applied to every latent), forward and backward
// (deepseek-spec §2.4). Rows are B windows of T positions each, row b·T + t at RoPE position t; attention is causal
// within a window.
#pragma once

#include <cstdint>
#include <vector>

#include "whale/core/thread_pool.h"
#include "whale/model/config.h"
#include "whale/train/ops.h"
#include "whale/train/parameters.h"

namespace whale::train {

// What the backward pass needs from the forward pass.
struct MlaActivations {
  std::vector<float> cq, cq_rstd, cqn;  // q_lora only: q_a_proj · x, its rmsnorm
  std::vector<float> q;                 // [N, H·qk_head_dim], rope part rotated
  std::vector<float> a;                 // [N, kv_lora_rank + rope dim]: kv_a_proj · x
  std::vector<float> ckv, kv_rstd;      // [N, kv_lora_rank]: the normalized latent
  std::vector<float> k_rope;            // [N, rope dim], rotated
  std::vector<float> kv;                // [N, H·(nope + v)]: kv_b_proj · ckv
  std::vector<float> probs;             // [B, H, T, T] attention weights
  std::vector<float> o;                 // [N, H·v_head_dim]
};

// out[N, hidden] = attention(x[N, hidden]) for N = B·T rows.
void mla_forward(ThreadPool& pool, const TAttention& w, const ModelConfig& c, const RopeTable& rope, const float* x,
                 int64_t B, int64_t T, MlaActivations& act, float* out);

// dx[N, hidden] = ∂L/∂x from dout; adds every weight's gradient.
void mla_backward(ThreadPool& pool, const TAttention& w, const ModelConfig& c, const RopeTable& rope, const float* x,
                  int64_t B, int64_t T, const MlaActivations& act, const float* dout, float* dx);

}  // namespace whale::train
