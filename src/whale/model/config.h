// The typed form of a DeepSeek config.json (deepseek-spec §1). Field names keep the JSON names.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "whale/kernels/quant_format.h"
#include "whale/kernels/rope.h"

namespace whale {

enum class ModelType { DeepseekV2, DeepseekV3 };
enum class ScoringFunc { Softmax, Sigmoid };
enum class TopkMethod { Greedy, GroupLimitedGreedy, NoauxTc };

struct FP8Quantization {  // quantization_config of V3/R1
  int block_rows = 128;
  int block_cols = 128;
};

struct ModelConfig {
  ModelType model_type = ModelType::DeepseekV3;
  int hidden_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int q_lora_rank = 0;  // 0: no q compression (V2-Lite; JSON null)
  int kv_lora_rank = 0;
  int qk_nope_head_dim = 0;
  int qk_rope_head_dim = 0;
  int v_head_dim = 0;
  int n_routed_experts = 0;
  int n_shared_experts = 0;
  int num_experts_per_tok = 0;
  int n_group = 1;
  int topk_group = 1;
  double routed_scaling_factor = 1.0;
  ScoringFunc scoring_func = ScoringFunc::Softmax;
  TopkMethod topk_method = TopkMethod::Greedy;
  bool norm_topk_prob = false;
  int first_k_dense_replace = 0;
  int moe_layer_freq = 1;
  int moe_intermediate_size = 0;
  int intermediate_size = 0;
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  int max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  int vocab_size = 0;
  int num_nextn_predict_layers = 0;
  int bos_token_id = -1;
  int eos_token_id = -1;
  std::optional<FP8Quantization> quantization;  // quant_method "fp8"
  // quant_method "whale": the checkpoint's Linear weights are whale q8 or q4 blocks (kernels/quant_format.h);
  // tensors the quantizer left in float (the MoE router) load as float.
  std::optional<QuantType> whale_quant;

  int qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  int latent_dim() const { return kv_lora_rank + qk_rope_head_dim; }  // values cached per token per layer
  bool is_moe_layer(int layer) const {
    return n_routed_experts > 0 && layer >= first_k_dense_replace && layer % moe_layer_freq == 0;
  }
  // Softmax scale of attention logits: qk_head_dim^-1/2 · mscale(factor, mscale_all_dim)² (deepseek-spec §2.6).
  double softmax_scale() const;
};

// Parses and validates a config.json object; errors name the key. `source` names the file in messages.
ModelConfig parse_model_config(const nlohmann::json& j, const std::string& source);
// Reads DIR/config.json.
ModelConfig load_model_config(const std::filesystem::path& model_dir);

}  // namespace whale
