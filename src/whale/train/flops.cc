#include "whale/train/flops.h"

namespace whale::train {
namespace {

// Forward FLOPs of one token through decoder layer L.
double layer_flops(const ModelConfig& c, int L, int64_t T) {
  const double D = c.hidden_size, H = c.num_attention_heads;
  double macs = 0.0;
  if (c.q_lora_rank > 0) macs += D * c.q_lora_rank + static_cast<double>(c.q_lora_rank) * H * c.qk_head_dim();
  else macs += D * H * c.qk_head_dim();
  macs += D * (c.kv_lora_rank + c.qk_rope_head_dim);
  macs += static_cast<double>(c.kv_lora_rank) * H * (c.qk_nope_head_dim + c.v_head_dim);
  macs += H * c.v_head_dim * D;
  macs += static_cast<double>(T) * H * (c.qk_head_dim() + c.v_head_dim);
  if (c.is_moe_layer(L)) {
    macs += D * c.n_routed_experts;
    macs += 3.0 * D * c.moe_intermediate_size * (c.num_experts_per_tok + c.n_shared_experts);
  } else {
    macs += 3.0 * D * c.intermediate_size;
  }
  return 2.0 * macs;
}

}  // namespace

double training_flops_per_token(const ModelConfig& c, int64_t T, bool mtp) {
  const double D = c.hidden_size, V = c.vocab_size;
  double forward = 2.0 * D * V;  // LM head
  for (int L = 0; L < c.num_hidden_layers; ++L) forward += layer_flops(c, L, T);
  if (mtp && c.num_nextn_predict_layers == 1 && T >= 2) {
    const double share = static_cast<double>(T - 1) / static_cast<double>(T);
    forward += share * (2.0 * 2.0 * D * D + layer_flops(c, c.num_hidden_layers, T - 1) + 2.0 * D * V);
  }
  return 3.0 * forward;
}

}  // namespace whale::train
