#include "whale/model/weights.h"

#include "whale/core/error.h"
#include "whale/kernels/quantize.h"

namespace whale {
namespace {

bool is_float_dtype(DType t) {
  return t == DType::F32 || t == DType::BF16 || t == DType::F16 || t == DType::F8_E4M3;
}

class Loader {
 public:
  Loader(const Checkpoint& ckpt, const ModelConfig& config) : ckpt_(ckpt), config_(config) {}

  Linear linear(const std::string& name, int64_t rows, int64_t cols) const {
    const TensorView t = ckpt_.get(name);
    if (t.dtype == DType::U8) return quantized(t, rows, cols);
    check_float(t);
    check_shape(t, {rows, cols});
    Linear l;
    l.base.dtype = t.dtype;
    l.base.rows = rows;
    l.base.cols = cols;
    l.base.data = t.data;
    if (t.dtype == DType::F8_E4M3) {
      if (!config_.quantization)
        fail("{}: tensor {} is F8_E4M3 but config.json has no fp8 quantization_config", t.file, name);
      const int br = config_.quantization->block_rows, bc = config_.quantization->block_cols;
      l.base.block_rows = br;
      l.base.block_cols = bc;
      const std::string scale_name = name + "_scale_inv";
      if (!ckpt_.has(scale_name))
        fail("{}: FP8 tensor {} has no block scales: missing tensor {}", t.file, name, scale_name);
      const TensorView s = ckpt_.get(scale_name);
      if (s.dtype != DType::F32 && s.dtype != DType::BF16)
        fail("{}: tensor {} has dtype {}; expected F32", s.file, scale_name, dtype_name(s.dtype));
      check_shape(s, {(rows + br - 1) / br, (cols + bc - 1) / bc});
      l.scale.resize(static_cast<size_t>(s.numel()));
      for (size_t i = 0; i < l.scale.size(); ++i) l.scale[i] = load_as_f32(s.dtype, s.data, i);
    }
    return l;
  }

  // A whale q8 / q4 weight (kernels/quant_format.h): NAME U8 [pr/16, pc/64, superblock bytes], scales inside.
  Linear quantized(const TensorView& t, int64_t rows, int64_t cols) const {
    if (!config_.whale_quant)
      fail("{}: tensor {} has dtype U8, which holds whale q8/q4 blocks, but config.json has no whale "
           "quantization_config",
           t.file, t.name);
    const QuantType qt = *config_.whale_quant;
    check_shape(t, quant_data_shape(qt, rows, cols), fmt::format(" for {} of [{}, {}]", quant_type_name(qt), rows, cols));
    Linear l;
    l.base.dtype = quant_dtype(qt);
    l.base.rows = rows;
    l.base.cols = cols;
    l.base.data = t.data;
    return l;
  }

  NormWeight vector(const std::string& name, int64_t n, bool allow_fp8 = false) const {
    const TensorView t = ckpt_.get(name);
    check_float(t);
    if (t.dtype == DType::F8_E4M3 && !allow_fp8)
      fail("{}: tensor {} has dtype F8_E4M3; expected F32, BF16 or F16", t.file, name);
    check_shape(t, {n});
    NormWeight v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[i] = load_as_f32(t.dtype, t.data, static_cast<size_t>(i));
    return v;
  }

  MlpWeights mlp(const std::string& prefix, int64_t hidden, int64_t inter) const {
    return {linear(prefix + "gate_proj.weight", inter, hidden), linear(prefix + "up_proj.weight", inter, hidden),
            linear(prefix + "down_proj.weight", hidden, inter)};
  }

  AttentionWeights attention(const std::string& p) const {
    const ModelConfig& c = config_;
    const int64_t heads = c.num_attention_heads, d = c.hidden_size;
    AttentionWeights a;
    if (c.q_lora_rank > 0) {
      a.q_a_proj = linear(p + "q_a_proj.weight", c.q_lora_rank, d);
      a.q_a_layernorm = vector(p + "q_a_layernorm.weight", c.q_lora_rank);
      a.q_b_proj = linear(p + "q_b_proj.weight", heads * c.qk_head_dim(), c.q_lora_rank);
    } else {
      a.q_proj = linear(p + "q_proj.weight", heads * c.qk_head_dim(), d);
    }
    a.kv_a_proj_with_mqa = linear(p + "kv_a_proj_with_mqa.weight", c.latent_dim(), d);
    a.kv_a_layernorm = vector(p + "kv_a_layernorm.weight", c.kv_lora_rank);
    a.kv_b_proj = linear(p + "kv_b_proj.weight", heads * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank);
    a.o_proj = linear(p + "o_proj.weight", d, heads * c.v_head_dim);
    return a;
  }

  LayerWeights layer(int index) const {
    const ModelConfig& c = config_;
    const std::string p = "model.layers." + std::to_string(index) + ".";
    LayerWeights l;
    l.input_layernorm = vector(p + "input_layernorm.weight", c.hidden_size);
    l.post_attention_layernorm = vector(p + "post_attention_layernorm.weight", c.hidden_size);
    l.self_attn = attention(p + "self_attn.");
    // The MTP layer (index num_hidden_layers) is always an MoE layer when the model has experts.
    const bool moe = index >= c.num_hidden_layers ? c.n_routed_experts > 0 : c.is_moe_layer(index);
    if (!moe) {
      l.mlp = mlp(p + "mlp.", c.hidden_size, c.intermediate_size);
      return l;
    }
    MoeWeights m;
    m.gate = linear(p + "mlp.gate.weight", c.n_routed_experts, c.hidden_size);
    if (c.topk_method == TopkMethod::NoauxTc)
      m.e_score_correction_bias = vector(p + "mlp.gate.e_score_correction_bias", c.n_routed_experts);
    m.experts.reserve(c.n_routed_experts);
    for (int e = 0; e < c.n_routed_experts; ++e)
      m.experts.push_back(
          mlp(p + "mlp.experts." + std::to_string(e) + ".", c.hidden_size, c.moe_intermediate_size));
    if (c.n_shared_experts > 0)
      m.shared_experts =
          mlp(p + "mlp.shared_experts.", c.hidden_size, static_cast<int64_t>(c.moe_intermediate_size) * c.n_shared_experts);
    l.moe = std::move(m);
    return l;
  }

  MtpWeights mtp(int index) const {
    const ModelConfig& c = config_;
    const std::string p = "model.layers." + std::to_string(index) + ".";
    MtpWeights m;
    m.layer = layer(index);
    m.embed_tokens = linear(p + "embed_tokens.weight", c.vocab_size, c.hidden_size);
    m.enorm = vector(p + "enorm.weight", c.hidden_size);
    m.hnorm = vector(p + "hnorm.weight", c.hidden_size);
    m.eh_proj = linear(p + "eh_proj.weight", c.hidden_size, 2 * static_cast<int64_t>(c.hidden_size));
    m.shared_head_norm = vector(p + "shared_head.norm.weight", c.hidden_size);
    m.shared_head_head = linear(p + "shared_head.head.weight", c.vocab_size, c.hidden_size);
    return m;
  }

 private:
  static void check_float(const TensorView& t) {
    if (!is_float_dtype(t.dtype))
      fail("{}: tensor {} has unsupported dtype {} (expected F32, BF16, F16 or F8_E4M3)", t.file, t.name,
           dtype_name(t.dtype));
  }
  static void check_shape(const TensorView& t, const std::vector<int64_t>& expected, const std::string& why = "") {
    if (t.shape != expected)
      fail("{}: tensor {} has shape {}, expected {} from config.json{}", t.file, t.name, shape_string(t.shape),
           shape_string(expected), why);
  }

  const Checkpoint& ckpt_;
  const ModelConfig& config_;
};

}  // namespace

ModelWeights load_model_weights(const Checkpoint& ckpt, const ModelConfig& config, const LoadProgress& progress) {
  const Loader load(ckpt, config);
  const int total = config.num_hidden_layers + config.num_nextn_predict_layers;
  ModelWeights w;
  w.embed_tokens = load.linear("model.embed_tokens.weight", config.vocab_size, config.hidden_size);
  w.layers.reserve(config.num_hidden_layers);
  for (int i = 0; i < config.num_hidden_layers; ++i) {
    w.layers.push_back(load.layer(i));
    if (progress) progress(i + 1, total);
  }
  w.norm = load.vector("model.norm.weight", config.hidden_size);
  w.lm_head = load.linear("lm_head.weight", config.vocab_size, config.hidden_size);
  for (int i = 0; i < config.num_nextn_predict_layers; ++i) {
    w.mtp.push_back(load.mtp(config.num_hidden_layers + i));
    if (progress) progress(config.num_hidden_layers + i + 1, total);
  }
  return w;
}


namespace {

void mark_mlp(MlpWeights& m) {
  for (Linear* l : {&m.gate_proj, &m.up_proj, &m.down_proj}) l->base.bf16_activations = true;
}

void mark_layer(LayerWeights& layer) {
  AttentionWeights& a = layer.self_attn;
  for (std::optional<Linear>* l : {&a.q_proj, &a.q_a_proj, &a.q_b_proj})
    if (*l) (*l)->base.bf16_activations = true;
  for (Linear* l : {&a.kv_a_proj_with_mqa, &a.o_proj}) l->base.bf16_activations = true;
  if (layer.mlp) mark_mlp(*layer.mlp);
  if (layer.moe) {
    for (MlpWeights& e : layer.moe->experts) mark_mlp(e);
    if (layer.moe->shared_experts) mark_mlp(*layer.moe->shared_experts);
  }
}

}  // namespace

void use_bf16_activations(ModelWeights& weights) {
  for (LayerWeights& layer : weights.layers) mark_layer(layer);
  for (MtpWeights& mtp : weights.mtp) {
    mark_layer(mtp.layer);
    mtp.eh_proj.base.bf16_activations = true;
    mtp.shared_head_head.base.bf16_activations = true;
  }
  weights.lm_head.base.bf16_activations = true;
}

}  // namespace whale
