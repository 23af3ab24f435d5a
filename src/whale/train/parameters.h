// The trainable state of a model: every tensor as f32 master values with a gradient beside it, in two flat buffers
// (so the optimizer, clipping and zeroing are loops over one array), plus the structured view the forward and backward
// passes read. Names are the checkpoint's (deepseek-spec §3.2), so a trained model is written as a checkpoint as is.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "whale/model/config.h"

namespace whale {

class Checkpoint;

struct TrainTensor {
  std::string name;
  std::vector<int64_t> shape;
  int64_t offset = 0;      // into ParameterSet::values / grads
  int64_t numel = 0;
  bool trainable = true;   // false: a buffer (the router's e_score_correction_bias), never given a gradient
};

// One tensor's values and gradient.
struct P {
  float* w = nullptr;
  float* g = nullptr;
  int64_t rows = 0, cols = 0;  // [rows, cols] for matrices; vectors have rows = 1
};

struct TMlp {  // SwiGLU: down · (silu(gate · x) ⊙ up · x)
  P gate, up, down;
};

struct TAttention {
  std::optional<P> q_proj;               // without q_lora
  std::optional<P> q_a_proj, q_a_norm, q_b_proj;
  P kv_a_proj, kv_a_norm, kv_b_proj, o_proj;
};

struct TMoe {
  P router;
  float* bias = nullptr;                 // e_score_correction_bias (noaux_tc), or null
  std::vector<TMlp> experts;
  std::optional<TMlp> shared;
};

struct TLayer {
  int index = 0;
  P input_norm, post_attention_norm;
  TAttention attn;
  std::optional<TMlp> mlp;
  std::optional<TMoe> moe;
};

struct TMtp {
  P enorm, hnorm, eh_proj, head_norm;
  TLayer layer;
};

struct TModel {
  P embed, final_norm, lm_head;
  std::vector<TLayer> layers;
  std::optional<TMtp> mtp;
};

// config.json for a checkpoint ParameterSet::save writes: `raw` (a source config) stored as F32, without quantization.
std::string f32_checkpoint_config(nlohmann::json raw);

class ParameterSet {
 public:
  // Lays out every tensor `config` calls for (the MTP module when num_nextn_predict_layers is 1, without its copies of
  // the embedding and head) and zeroes them. Throws Error for configs training does not support.
  explicit ParameterSet(const ModelConfig& config);
  ParameterSet(const ParameterSet&) = delete;
  ParameterSet& operator=(const ParameterSet&) = delete;

  // Fresh weights from `seed`: Linear and embedding N(0, std²), with o_proj and down_proj scaled by
  // 1/sqrt(2·layers) (the residual branches' outputs); norms 1; router bias 0.
  void init_random(uint64_t seed, double std);
  // Values from a checkpoint of the same config (any stored format, decoded to f32). Errors name the tensor.
  void load(const Checkpoint& ckpt);
  // Writes DIR/model.safetensors with every tensor as F32 (and the MTP copies of the embedding and head).
  void save(const std::filesystem::path& dir) const;
  // Writes the trainable tensors' gradients as F32 to one safetensors file (for external checks).
  void save_gradients(const std::filesystem::path& file) const;

  const ModelConfig& config() const { return config_; }
  const TModel& model() const { return model_; }
  const std::vector<TrainTensor>& tensors() const { return tensors_; }
  std::vector<float>& values() { return values_; }
  const std::vector<float>& values() const { return values_; }
  std::vector<float>& grads() { return grads_; }
  const std::vector<float>& grads() const { return grads_; }
  int64_t trainable_count() const;
  void zero_grads();

 private:
  int add(const std::string& name, std::vector<int64_t> shape, bool trainable = true);
  void build_view();

  ModelConfig config_;
  std::vector<TrainTensor> tensors_;
  std::vector<float> values_, grads_;
  TModel model_;
};

}  // namespace whale
