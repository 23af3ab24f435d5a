#include "whale/train/parameters.h"

#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "whale/core/error.h"
#include "whale/io/checkpoint.h"
#include "whale/io/safetensors_writer.h"
#include "whale/kernels/matmul.h"
#include "whale/model/weights.h"

namespace whale {
namespace {

std::string layer_prefix(int layer) { return "model.layers." + std::to_string(layer) + "."; }

}  // namespace

int ParameterSet::add(const std::string& name, std::vector<int64_t> shape, bool trainable) {
  TrainTensor t;
  t.name = name;
  t.numel = 1;
  for (int64_t d : shape) t.numel *= d;
  t.shape = std::move(shape);
  t.trainable = trainable;
  t.offset = tensors_.empty() ? 0 : tensors_.back().offset + tensors_.back().numel;
  tensors_.push_back(std::move(t));
  return static_cast<int>(tensors_.size()) - 1;
}

ParameterSet::ParameterSet(const ModelConfig& c) : config_(c) {
  if (c.num_nextn_predict_layers > 1)
    fail("num_nextn_predict_layers = {} is not supported for training (0 or 1)", c.num_nextn_predict_layers);
  const int64_t D = c.hidden_size, H = c.num_attention_heads;
  auto add_mlp = [&](const std::string& p, int64_t inter) {
    add(p + "gate_proj.weight", {inter, D});
    add(p + "up_proj.weight", {inter, D});
    add(p + "down_proj.weight", {D, inter});
  };
  auto add_layer = [&](int L) {
    const std::string p = layer_prefix(L);
    add(p + "input_layernorm.weight", {D});
    const std::string a = p + "self_attn.";
    if (c.q_lora_rank > 0) {
      add(a + "q_a_proj.weight", {c.q_lora_rank, D});
      add(a + "q_a_layernorm.weight", {c.q_lora_rank});
      add(a + "q_b_proj.weight", {H * c.qk_head_dim(), c.q_lora_rank});
    } else {
      add(a + "q_proj.weight", {H * c.qk_head_dim(), D});
    }
    add(a + "kv_a_proj_with_mqa.weight", {c.kv_lora_rank + c.qk_rope_head_dim, D});
    add(a + "kv_a_layernorm.weight", {c.kv_lora_rank});
    add(a + "kv_b_proj.weight", {H * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank});
    add(a + "o_proj.weight", {D, H * c.v_head_dim});
    add(p + "post_attention_layernorm.weight", {D});
    if (c.is_moe_layer(L)) {
      add(p + "mlp.gate.weight", {c.n_routed_experts, D});
      if (c.topk_method == TopkMethod::NoauxTc) add(p + "mlp.gate.e_score_correction_bias", {c.n_routed_experts}, false);
      for (int e = 0; e < c.n_routed_experts; ++e)
        add_mlp(p + "mlp.experts." + std::to_string(e) + ".", c.moe_intermediate_size);
      if (c.n_shared_experts > 0)
        add_mlp(p + "mlp.shared_experts.", static_cast<int64_t>(c.moe_intermediate_size) * c.n_shared_experts);
    } else {
      add_mlp(p + "mlp.", c.intermediate_size);
    }
  };

  add("model.embed_tokens.weight", {c.vocab_size, D});
  for (int L = 0; L < c.num_hidden_layers; ++L) add_layer(L);
  if (c.num_nextn_predict_layers == 1) {
    const int N = c.num_hidden_layers;
    add_layer(N);
    add(layer_prefix(N) + "enorm.weight", {D});
    add(layer_prefix(N) + "hnorm.weight", {D});
    add(layer_prefix(N) + "eh_proj.weight", {D, 2 * D});
    add(layer_prefix(N) + "shared_head.norm.weight", {D});
  }
  add("model.norm.weight", {D});
  add("lm_head.weight", {c.vocab_size, D});

  const int64_t total = tensors_.back().offset + tensors_.back().numel;
  values_.assign(static_cast<size_t>(total), 0.0f);
  grads_.assign(static_cast<size_t>(total), 0.0f);
  build_view();
}

void ParameterSet::build_view() {
  std::map<std::string, int> index;
  for (size_t i = 0; i < tensors_.size(); ++i) index[tensors_[i].name] = static_cast<int>(i);
  auto get = [&](const std::string& name) {
    const TrainTensor& t = tensors_[index.at(name)];
    P p;
    p.w = values_.data() + t.offset;
    p.g = grads_.data() + t.offset;
    p.rows = t.shape.size() == 2 ? t.shape[0] : 1;
    p.cols = t.shape.back();
    return p;
  };
  auto has = [&](const std::string& name) { return index.count(name) != 0; };
  auto mlp = [&](const std::string& p) { return TMlp{get(p + "gate_proj.weight"), get(p + "up_proj.weight"),
                                                     get(p + "down_proj.weight")}; };
  auto layer = [&](int L) {
    const std::string p = layer_prefix(L), a = p + "self_attn.";
    TLayer l;
    l.index = L;
    l.input_norm = get(p + "input_layernorm.weight");
    l.post_attention_norm = get(p + "post_attention_layernorm.weight");
    if (has(a + "q_proj.weight")) {
      l.attn.q_proj = get(a + "q_proj.weight");
    } else {
      l.attn.q_a_proj = get(a + "q_a_proj.weight");
      l.attn.q_a_norm = get(a + "q_a_layernorm.weight");
      l.attn.q_b_proj = get(a + "q_b_proj.weight");
    }
    l.attn.kv_a_proj = get(a + "kv_a_proj_with_mqa.weight");
    l.attn.kv_a_norm = get(a + "kv_a_layernorm.weight");
    l.attn.kv_b_proj = get(a + "kv_b_proj.weight");
    l.attn.o_proj = get(a + "o_proj.weight");
    if (has(p + "mlp.gate.weight")) {
      TMoe m;
      m.router = get(p + "mlp.gate.weight");
      if (has(p + "mlp.gate.e_score_correction_bias")) m.bias = get(p + "mlp.gate.e_score_correction_bias").w;
      for (int e = 0; e < config_.n_routed_experts; ++e) m.experts.push_back(mlp(p + "mlp.experts." + std::to_string(e) + "."));
      if (has(p + "mlp.shared_experts.gate_proj.weight")) m.shared = mlp(p + "mlp.shared_experts.");
      l.moe = std::move(m);
    } else {
      l.mlp = mlp(p + "mlp.");
    }
    return l;
  };
  model_.embed = get("model.embed_tokens.weight");
  model_.final_norm = get("model.norm.weight");
  model_.lm_head = get("lm_head.weight");
  for (int L = 0; L < config_.num_hidden_layers; ++L) model_.layers.push_back(layer(L));
  if (config_.num_nextn_predict_layers == 1) {
    const int N = config_.num_hidden_layers;
    const std::string p = layer_prefix(N);
    TMtp m;
    m.enorm = get(p + "enorm.weight");
    m.hnorm = get(p + "hnorm.weight");
    m.eh_proj = get(p + "eh_proj.weight");
    m.head_norm = get(p + "shared_head.norm.weight");
    m.layer = layer(N);
    model_.mtp = std::move(m);
  }
}

void ParameterSet::init_random(uint64_t seed, double std) {
  std::mt19937_64 rng(seed);
  const double residual_scale = 1.0 / std::sqrt(2.0 * std::max(1, config_.num_hidden_layers));
  for (const TrainTensor& t : tensors_) {
    float* w = values_.data() + t.offset;
    if (t.shape.size() == 1) {  // norm weights 1, router bias 0
      const float v = t.name.ends_with("e_score_correction_bias") ? 0.0f : 1.0f;
      std::fill(w, w + t.numel, v);
      continue;
    }
    double s = std;
    if (t.name.ends_with("o_proj.weight") || t.name.ends_with("down_proj.weight")) s *= residual_scale;
    std::normal_distribution<double> normal(0.0, s);
    for (int64_t i = 0; i < t.numel; ++i) w[i] = static_cast<float>(normal(rng));
  }
}

void ParameterSet::load(const Checkpoint& ckpt) {
  const ModelWeights mw = load_model_weights(ckpt, config_);
  auto put_linear = [&](const Linear& l, const P& p) { decode_rows(l.view(), 0, l.rows(), p.w); };
  auto put_vec = [&](const std::vector<float>& v, const P& p) { std::copy(v.begin(), v.end(), p.w); };
  auto put_mlp = [&](const MlpWeights& m, const TMlp& t) {
    put_linear(m.gate_proj, t.gate);
    put_linear(m.up_proj, t.up);
    put_linear(m.down_proj, t.down);
  };
  auto put_layer = [&](const LayerWeights& lw, const TLayer& t) {
    put_vec(lw.input_layernorm, t.input_norm);
    put_vec(lw.post_attention_layernorm, t.post_attention_norm);
    const AttentionWeights& a = lw.self_attn;
    if (t.attn.q_proj) {
      put_linear(*a.q_proj, *t.attn.q_proj);
    } else {
      put_linear(*a.q_a_proj, *t.attn.q_a_proj);
      put_vec(a.q_a_layernorm, *t.attn.q_a_norm);
      put_linear(*a.q_b_proj, *t.attn.q_b_proj);
    }
    put_linear(a.kv_a_proj_with_mqa, t.attn.kv_a_proj);
    put_vec(a.kv_a_layernorm, t.attn.kv_a_norm);
    put_linear(a.kv_b_proj, t.attn.kv_b_proj);
    put_linear(a.o_proj, t.attn.o_proj);
    if (t.mlp) put_mlp(*lw.mlp, *t.mlp);
    if (t.moe) {
      put_linear(lw.moe->gate, t.moe->router);
      if (t.moe->bias) std::copy(lw.moe->e_score_correction_bias.begin(), lw.moe->e_score_correction_bias.end(), t.moe->bias);
      for (size_t e = 0; e < t.moe->experts.size(); ++e) put_mlp(lw.moe->experts[e], t.moe->experts[e]);
      if (t.moe->shared) put_mlp(*lw.moe->shared_experts, *t.moe->shared);
    }
  };
  put_linear(mw.embed_tokens, model_.embed);
  put_vec(mw.norm, model_.final_norm);
  put_linear(mw.lm_head, model_.lm_head);
  for (size_t L = 0; L < model_.layers.size(); ++L) put_layer(mw.layers[L], model_.layers[L]);
  if (model_.mtp) {
    if (mw.mtp.empty()) fail("{}: config.json asks for an MTP layer but the checkpoint has none", ckpt.dir().string());
    const MtpWeights& m = mw.mtp[0];
    put_vec(m.enorm, model_.mtp->enorm);
    put_vec(m.hnorm, model_.mtp->hnorm);
    put_linear(m.eh_proj, model_.mtp->eh_proj);
    put_vec(m.shared_head_norm, model_.mtp->head_norm);
    put_layer(m.layer, model_.mtp->layer);
  }
}

void ParameterSet::save(const std::filesystem::path& dir) const {
  std::vector<TensorSpec> specs;
  for (const TrainTensor& t : tensors_) specs.push_back({t.name, DType::F32, t.shape});
  std::string embed_copy, head_copy;
  if (model_.mtp) {
    const std::string p = layer_prefix(config_.num_hidden_layers);
    embed_copy = p + "embed_tokens.weight";
    head_copy = p + "shared_head.head.weight";
    specs.push_back({embed_copy, DType::F32, {config_.vocab_size, config_.hidden_size}});
    specs.push_back({head_copy, DType::F32, {config_.vocab_size, config_.hidden_size}});
  }
  std::map<std::string, const TrainTensor*> by_name;
  for (const TrainTensor& t : tensors_) by_name[t.name] = &t;
  SafetensorsWriter writer((dir / "model.safetensors").string(), specs, {{"format", "pt"}});
  for (const TensorSpec& s : writer.order()) {
    const float* data = nullptr;
    if (s.name == embed_copy) data = model_.embed.w;
    else if (s.name == head_copy) data = model_.lm_head.w;
    else data = values_.data() + by_name.at(s.name)->offset;
    writer.write(s.name, data, s.nbytes());
  }
  writer.finish();
}

void ParameterSet::save_gradients(const std::filesystem::path& file) const {
  std::vector<TensorSpec> specs;
  for (const TrainTensor& t : tensors_)
    if (t.trainable) specs.push_back({t.name, DType::F32, t.shape});
  std::map<std::string, const TrainTensor*> by_name;
  for (const TrainTensor& t : tensors_) by_name[t.name] = &t;
  SafetensorsWriter writer(file.string(), specs);
  for (const TensorSpec& s : writer.order())
    writer.write(s.name, grads_.data() + by_name.at(s.name)->offset, s.nbytes());
  writer.finish();
}

int64_t ParameterSet::trainable_count() const {
  int64_t n = 0;
  for (const TrainTensor& t : tensors_)
    if (t.trainable) n += t.numel;
  return n;
}

void ParameterSet::zero_grads() { std::fill(grads_.begin(), grads_.end(), 0.0f); }

std::string f32_checkpoint_config(nlohmann::json raw) {
  raw.erase("quantization_config");
  raw["torch_dtype"] = "float32";
  return raw.dump(2) + "\n";
}

}  // namespace whale
