#include "whale/model/config.h"

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "whale/core/error.h"

namespace whale {
namespace {

class Reader {
 public:
  Reader(const nlohmann::json& j, std::string source) : j_(j), source_(std::move(source)) {}

  [[noreturn]] void bad(const std::string& key, const std::string& why) const {
    fail("{}: field \"{}\" {}", source_, key, why);
  }
  const nlohmann::json* find(const std::string& key) const {
    const auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  const nlohmann::json& need(const std::string& key) const {
    const nlohmann::json* v = find(key);
    if (!v) bad(key, "is missing");
    return *v;
  }
  int integer(const std::string& key, int min_value) const { return as_int(key, need(key), min_value); }
  int integer_or(const std::string& key, int fallback, int min_value) const {
    const nlohmann::json* v = find(key);
    return v ? as_int(key, *v, min_value) : fallback;
  }
  double number(const std::string& key) const { return as_number(key, need(key)); }
  double number_or(const std::string& key, double fallback) const {
    const nlohmann::json* v = find(key);
    return v ? as_number(key, *v) : fallback;
  }
  bool boolean_or(const std::string& key, bool fallback) const {
    const nlohmann::json* v = find(key);
    if (!v) return fallback;
    if (!v->is_boolean()) bad(key, "must be true or false");
    return v->get<bool>();
  }
  std::string string(const std::string& key) const {
    const nlohmann::json& v = need(key);
    if (!v.is_string()) bad(key, "must be a string");
    return v.get<std::string>();
  }

 private:
  int as_int(const std::string& key, const nlohmann::json& v, int min_value) const {
    if (!v.is_number_integer()) bad(key, "must be an integer");
    const int64_t x = v.get<int64_t>();
    if (x < min_value || x > (1 << 30)) bad(key, fmt::format("= {} is out of range (minimum {})", x, min_value));
    return static_cast<int>(x);
  }
  double as_number(const std::string& key, const nlohmann::json& v) const {
    if (!v.is_number()) bad(key, "must be a number");
    const double x = v.get<double>();
    if (!std::isfinite(x)) bad(key, "must be finite");
    return x;
  }

  const nlohmann::json& j_;
  std::string source_;
};

double yarn_mscale(double factor, double m) { return factor <= 1.0 ? 1.0 : 0.1 * m * std::log(factor) + 1.0; }

}  // namespace

double ModelConfig::softmax_scale() const {
  double scale = 1.0 / std::sqrt(static_cast<double>(qk_head_dim()));
  if (rope_scaling) {
    const double m = yarn_mscale(rope_scaling->factor, rope_scaling->mscale_all_dim);
    scale *= m * m;
  }
  return scale;
}

ModelConfig parse_model_config(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) fail("{}: not a JSON object", source);
  const Reader r(j, source);
  ModelConfig c;

  const std::string type = r.string("model_type");
  if (type == "deepseek_v2") c.model_type = ModelType::DeepseekV2;
  else if (type == "deepseek_v3") c.model_type = ModelType::DeepseekV3;
  else r.bad("model_type", fmt::format("= \"{}\" is not supported (expected \"deepseek_v2\" or \"deepseek_v3\")", type));

  c.hidden_size = r.integer("hidden_size", 1);
  c.num_hidden_layers = r.integer("num_hidden_layers", 1);
  c.num_attention_heads = r.integer("num_attention_heads", 1);
  c.q_lora_rank = r.integer_or("q_lora_rank", 0, 0);
  c.kv_lora_rank = r.integer("kv_lora_rank", 1);
  c.qk_nope_head_dim = r.integer("qk_nope_head_dim", 1);
  c.qk_rope_head_dim = r.integer("qk_rope_head_dim", 2);
  if (c.qk_rope_head_dim % 2 != 0) r.bad("qk_rope_head_dim", "must be even (RoPE rotates pairs)");
  c.v_head_dim = r.integer("v_head_dim", 1);
  c.intermediate_size = r.integer("intermediate_size", 1);
  c.vocab_size = r.integer("vocab_size", 1);
  c.max_position_embeddings = r.integer("max_position_embeddings", 1);
  c.rms_norm_eps = r.number("rms_norm_eps");
  if (c.rms_norm_eps <= 0) r.bad("rms_norm_eps", "must be positive");
  c.rope_theta = r.number_or("rope_theta", 10000.0);
  if (c.rope_theta <= 1.0) r.bad("rope_theta", "must be greater than 1");
  c.bos_token_id = r.integer_or("bos_token_id", -1, 0);
  c.eos_token_id = r.integer_or("eos_token_id", -1, 0);
  c.num_nextn_predict_layers = r.integer_or("num_nextn_predict_layers", 0, 0);

  if (const auto* act = r.find("hidden_act"); act && (!act->is_string() || act->get<std::string>() != "silu"))
    r.bad("hidden_act", "is not supported (only \"silu\")");
  if (r.boolean_or("tie_word_embeddings", false)) r.bad("tie_word_embeddings", "= true is not supported");
  if (r.boolean_or("attention_bias", false)) r.bad("attention_bias", "= true is not supported");

  // Mixture of experts. n_routed_experts null/absent means a dense model.
  c.n_routed_experts = r.integer_or("n_routed_experts", 0, 0);
  if (c.n_routed_experts > 0) {
    c.n_shared_experts = r.integer_or("n_shared_experts", 0, 0);
    c.num_experts_per_tok = r.integer("num_experts_per_tok", 1);
    c.moe_intermediate_size = r.integer("moe_intermediate_size", 1);
    c.first_k_dense_replace = r.integer_or("first_k_dense_replace", 0, 0);
    c.moe_layer_freq = r.integer_or("moe_layer_freq", 1, 1);
    c.n_group = r.integer_or("n_group", 1, 1);
    c.topk_group = r.integer_or("topk_group", 1, 1);
    c.routed_scaling_factor = r.number_or("routed_scaling_factor", 1.0);
    c.norm_topk_prob = r.boolean_or("norm_topk_prob", false);

    const std::string scoring = r.string("scoring_func");
    if (scoring == "softmax") c.scoring_func = ScoringFunc::Softmax;
    else if (scoring == "sigmoid") c.scoring_func = ScoringFunc::Sigmoid;
    else r.bad("scoring_func", fmt::format("= \"{}\" is not supported (expected \"softmax\" or \"sigmoid\")", scoring));

    const std::string method = r.string("topk_method");
    if (method == "greedy") c.topk_method = TopkMethod::Greedy;
    else if (method == "group_limited_greedy") c.topk_method = TopkMethod::GroupLimitedGreedy;
    else if (method == "noaux_tc") c.topk_method = TopkMethod::NoauxTc;
    else
      r.bad("topk_method",
            fmt::format("= \"{}\" is not supported (expected \"greedy\", \"group_limited_greedy\" or \"noaux_tc\")",
                        method));

    if (c.num_experts_per_tok > c.n_routed_experts)
      r.bad("num_experts_per_tok", fmt::format("= {} exceeds n_routed_experts = {}", c.num_experts_per_tok,
                                               c.n_routed_experts));
    if (c.n_routed_experts % c.n_group != 0)
      r.bad("n_group", fmt::format("= {} does not divide n_routed_experts = {}", c.n_group, c.n_routed_experts));
    if (c.topk_group > c.n_group)
      r.bad("topk_group", fmt::format("= {} exceeds n_group = {}", c.topk_group, c.n_group));
    if (c.topk_method != TopkMethod::Greedy &&
        c.topk_group * (c.n_routed_experts / c.n_group) < c.num_experts_per_tok)
      r.bad("topk_group", "leaves fewer experts than num_experts_per_tok");
    if (c.topk_method == TopkMethod::NoauxTc && c.n_routed_experts / c.n_group < 2)
      r.bad("n_group", "noaux_tc scores a group by its two best experts, so groups need at least 2 experts");
  }

  if (const nlohmann::json* rs = r.find("rope_scaling")) {
    if (!rs->is_object()) r.bad("rope_scaling", "must be an object or null");
    const Reader s(*rs, source + ": rope_scaling");
    const auto type_it = rs->find("type") != rs->end() ? rs->find("type") : rs->find("rope_type");
    const std::string kind = type_it != rs->end() && type_it->is_string() ? type_it->get<std::string>() : "";
    if (kind != "yarn") r.bad("rope_scaling.type", fmt::format("= \"{}\" is not supported (only \"yarn\")", kind));
    RopeScaling y;
    y.factor = s.number("factor");
    if (y.factor < 1.0) s.bad("factor", "must be at least 1");
    y.original_max_position_embeddings = s.integer("original_max_position_embeddings", 1);
    y.beta_fast = s.number_or("beta_fast", 32.0);
    y.beta_slow = s.number_or("beta_slow", 1.0);
    y.mscale = s.number_or("mscale", 1.0);
    y.mscale_all_dim = s.number_or("mscale_all_dim", 0.0);
    c.rope_scaling = y;
  }

  if (const nlohmann::json* q = r.find("quantization_config")) {
    if (!q->is_object()) r.bad("quantization_config", "must be an object or null");
    const Reader s(*q, source + ": quantization_config");
    const std::string method = s.string("quant_method");
    if (method == "fp8") {
      if (const auto* fmt_field = s.find("fmt"); fmt_field && (!fmt_field->is_string() || *fmt_field != "e4m3"))
        s.bad("fmt", "is not supported (only \"e4m3\")");
      const nlohmann::json& block = s.need("weight_block_size");
      if (!block.is_array() || block.size() != 2 || !block[0].is_number_integer() || !block[1].is_number_integer() ||
          block[0].get<int64_t>() <= 0 || block[1].get<int64_t>() <= 0 || block[0].get<int64_t>() > 65536 ||
          block[1].get<int64_t>() > 65536)
        s.bad("weight_block_size", "must be two positive integers");
      c.quantization = FP8Quantization{block[0].get<int>(), block[1].get<int>()};
      if (const auto* sf = s.find("scale_fmt"); sf && *sf != "ue8m0")
        s.bad("scale_fmt", "is not supported");
    } else if (method == "whale") {
      // whale's own block formats (kernels/quant_format.h), written by `whale quantize`.
      const std::string format = s.string("format");
      if (format == "q8") c.whale_quant = QuantType::Q8;
      else if (format == "q4") c.whale_quant = QuantType::Q4;
      else s.bad("format", fmt::format("= \"{}\" is not supported (expected \"q8\" or \"q4\")", format));
      const nlohmann::json& group = s.need("group_size");
      if (!group.is_number_integer() || group.get<int64_t>() != kQuantBlock)
        s.bad("group_size", fmt::format("= {} is not supported (only {})", group.dump(), kQuantBlock));
      const nlohmann::json& interleave = s.need("row_interleave");
      if (!interleave.is_number_integer() || interleave.get<int64_t>() != kQuantRowGroup)
        s.bad("row_interleave", fmt::format("= {} is not supported (only {})", interleave.dump(), kQuantRowGroup));
      // Since session 43 the scales sit in the code stream (superblocks); before, in NAME_scale tensors of their own.
      const auto* scales = s.find("scales");
      if (!scales)
        s.bad("scales", "is missing: the checkpoint was written by an earlier whale quantize, with its block scales in "
                        "separate tensors; quantize the original checkpoint again");
      if (!scales->is_string() || *scales != "inline")
        s.bad("scales", fmt::format("= {} is not supported (only \"inline\")", scales->dump()));
    } else {
      s.bad("quant_method", fmt::format("= \"{}\" is not supported (expected \"fp8\" or \"whale\")", method));
    }
  }
  return c;
}

ModelConfig load_model_config(const std::filesystem::path& model_dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(model_dir, ec)) fail("{}: model directory not found", model_dir.string());
  const std::filesystem::path path = model_dir / "config.json";
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open (is {} a Hugging Face model directory?)", path.string(), model_dir.string());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", path.string(), e.what());
  }
  return parse_model_config(j, path.string());
}

}  // namespace whale
