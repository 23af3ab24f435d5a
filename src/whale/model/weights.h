// The model's tensors, validated against config.json and viewed in place in the mapped checkpoint
// (deepseek-spec §3.2). Only block scales and norm vectors (a few KB per layer) are copied, to f32.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "whale/io/checkpoint.h"
#include "whale/kernels/weight.h"
#include "whale/model/config.h"

namespace whale {

// A Linear weight [out, in] and, for FP8, its block scales.
struct Linear {
  Weight2D base;
  std::vector<float> scale;  // FP8 block scales (weight_scale_inv), empty otherwise

  Weight2D view() const {
    Weight2D w = base;
    w.block_scale = scale.empty() ? nullptr : scale.data();
    return w;
  }
  int64_t rows() const { return base.rows; }
  int64_t cols() const { return base.cols; }
};

using NormWeight = std::vector<float>;

struct MlpWeights {  // SwiGLU: down · (silu(gate · x) ⊙ up · x)
  Linear gate_proj, up_proj, down_proj;
};

struct AttentionWeights {
  std::optional<Linear> q_proj;  // without q_lora (V2-Lite)
  std::optional<Linear> q_a_proj, q_b_proj;
  NormWeight q_a_layernorm;
  Linear kv_a_proj_with_mqa;  // [kv_lora_rank + qk_rope_head_dim, hidden]
  NormWeight kv_a_layernorm;
  Linear kv_b_proj;  // [heads · (qk_nope_head_dim + v_head_dim), kv_lora_rank]
  Linear o_proj;     // [hidden, heads · v_head_dim]
};

struct MoeWeights {
  Linear gate;                                   // router [n_routed_experts, hidden]
  std::vector<float> e_score_correction_bias;    // noaux_tc only
  std::vector<MlpWeights> experts;
  std::optional<MlpWeights> shared_experts;
};

struct LayerWeights {
  NormWeight input_layernorm, post_attention_layernorm;
  AttentionWeights self_attn;
  std::optional<MlpWeights> mlp;  // dense layers
  std::optional<MoeWeights> moe;  // MoE layers
};

// The multi-token-prediction module (layer index num_hidden_layers; deepseek-spec §4). Loaded, not yet used.
struct MtpWeights {
  LayerWeights layer;
  Linear embed_tokens;
  NormWeight enorm, hnorm;
  Linear eh_proj;  // [hidden, 2·hidden]
  NormWeight shared_head_norm;
  Linear shared_head_head;
};

struct ModelWeights {
  Linear embed_tokens;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  NormWeight norm;
  Linear lm_head;  // [vocab, hidden]
  std::vector<MtpWeights> mtp;
};

// Reports loading progress: layers done of all layers (MTP included).
using LoadProgress = std::function<void(int done, int total)>;

// Finds, validates (dtype, shape, scales) and views every tensor the config calls for.
// Errors name the tensor and the file that holds it.
ModelWeights load_model_weights(const Checkpoint& ckpt, const ModelConfig& config,
                                const LoadProgress& progress = nullptr);

// Lets the model's BF16 projections (q, kv_a and o of attention, MLPs and experts, LM head) multiply their inputs
// rounded to bf16 (Weight2D::bf16_activations). Not the router, which runs exact, nor kv_b_proj, whose
// products inside attention (the cached latents, the absorbed heads) keep f32 in every attention form.

void use_bf16_activations(ModelWeights& weights);

}  // namespace whale
