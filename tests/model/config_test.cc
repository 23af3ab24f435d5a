#include "whale/model/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "whale/core/error.h"

namespace whale {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using json = nlohmann::json;

// DeepSeek-V3 config.json, with the values of deepseek-spec §1.1 (the released file's keys, including ones whale
// ignores).
json v3_config() {
  return json::parse(R"({
    "architectures": ["DeepseekV3ForCausalLM"],
    "attention_bias": false,
    "attention_dropout": 0.0,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "ep_size": 1,
    "first_k_dense_replace": 3,
    "hidden_act": "silu",
    "hidden_size": 7168,
    "initializer_range": 0.02,
    "intermediate_size": 18432,
    "kv_lora_rank": 512,
    "max_position_embeddings": 163840,
    "model_type": "deepseek_v3",
    "moe_intermediate_size": 2048,
    "moe_layer_freq": 1,
    "n_group": 8,
    "n_routed_experts": 256,
    "n_shared_experts": 1,
    "norm_topk_prob": true,
    "num_attention_heads": 128,
    "num_experts_per_tok": 8,
    "num_hidden_layers": 61,
    "num_key_value_heads": 128,
    "num_nextn_predict_layers": 1,
    "q_lora_rank": 1536,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "quantization_config": {
      "activation_scheme": "dynamic",
      "fmt": "e4m3",
      "quant_method": "fp8",
      "weight_block_size": [128, 128]
    },
    "rms_norm_eps": 1e-06,
    "rope_scaling": {
      "beta_fast": 32,
      "beta_slow": 1,
      "factor": 40,
      "mscale": 1.0,
      "mscale_all_dim": 1.0,
      "original_max_position_embeddings": 4096,
      "type": "yarn"
    },
    "rope_theta": 10000,
    "routed_scaling_factor": 2.5,
    "scoring_func": "sigmoid",
    "tie_word_embeddings": false,
    "topk_group": 4,
    "topk_method": "noaux_tc",
    "torch_dtype": "bfloat16",
    "transformers_version": "4.33.1",
    "use_cache": true,
    "v_head_dim": 128,
    "vocab_size": 129280
  })");
}

// DeepSeek-V2-Lite config.json (deepseek-spec §1.1): q_lora_rank null, greedy softmax routing, BF16.
json v2_lite_config() {
  return json::parse(R"({
    "architectures": ["DeepseekV2ForCausalLM"],
    "attention_bias": false,
    "aux_loss_alpha": 0.001,
    "bos_token_id": 100000,
    "eos_token_id": 100001,
    "first_k_dense_replace": 1,
    "hidden_act": "silu",
    "hidden_size": 2048,
    "intermediate_size": 10944,
    "kv_lora_rank": 512,
    "max_position_embeddings": 163840,
    "model_type": "deepseek_v2",
    "moe_intermediate_size": 1408,
    "moe_layer_freq": 1,
    "n_group": 1,
    "n_routed_experts": 64,
    "n_shared_experts": 2,
    "norm_topk_prob": false,
    "num_attention_heads": 16,
    "num_experts_per_tok": 6,
    "num_hidden_layers": 27,
    "num_key_value_heads": 16,
    "q_lora_rank": null,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "rms_norm_eps": 1e-06,
    "rope_scaling": {
      "beta_fast": 32,
      "beta_slow": 1,
      "factor": 40,
      "mscale": 0.707,
      "mscale_all_dim": 0.707,
      "original_max_position_embeddings": 4096,
      "type": "yarn"
    },
    "rope_theta": 10000,
    "routed_scaling_factor": 1.0,
    "scoring_func": "softmax",
    "seq_aux": true,
    "tie_word_embeddings": false,
    "topk_group": 1,
    "topk_method": "greedy",
    "torch_dtype": "bfloat16",
    "v_head_dim": 128,
    "vocab_size": 102400
  })");
}

std::string config_error(const json& j) {
  try {
    parse_model_config(j, "config.json");
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no Error thrown for " << j.dump();
  return "";
}

TEST(ModelConfig, ParsesDeepSeekV3) {
  const ModelConfig c = parse_model_config(v3_config(), "config.json");
  EXPECT_EQ(c.model_type, ModelType::DeepseekV3);
  EXPECT_EQ(c.hidden_size, 7168);
  EXPECT_EQ(c.num_hidden_layers, 61);
  EXPECT_EQ(c.num_attention_heads, 128);
  EXPECT_EQ(c.q_lora_rank, 1536);
  EXPECT_EQ(c.kv_lora_rank, 512);
  EXPECT_EQ(c.qk_nope_head_dim, 128);
  EXPECT_EQ(c.qk_rope_head_dim, 64);
  EXPECT_EQ(c.qk_head_dim(), 192);
  EXPECT_EQ(c.latent_dim(), 576);
  EXPECT_EQ(c.v_head_dim, 128);
  EXPECT_EQ(c.n_routed_experts, 256);
  EXPECT_EQ(c.n_shared_experts, 1);
  EXPECT_EQ(c.num_experts_per_tok, 8);
  EXPECT_EQ(c.n_group, 8);
  EXPECT_EQ(c.topk_group, 4);
  EXPECT_EQ(c.routed_scaling_factor, 2.5);
  EXPECT_EQ(c.scoring_func, ScoringFunc::Sigmoid);
  EXPECT_EQ(c.topk_method, TopkMethod::NoauxTc);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.first_k_dense_replace, 3);
  EXPECT_EQ(c.moe_layer_freq, 1);
  EXPECT_EQ(c.moe_intermediate_size, 2048);
  EXPECT_EQ(c.intermediate_size, 18432);
  EXPECT_EQ(c.rope_theta, 10000.0);
  ASSERT_TRUE(c.rope_scaling.has_value());
  EXPECT_EQ(c.rope_scaling->factor, 40.0);
  EXPECT_EQ(c.rope_scaling->original_max_position_embeddings, 4096);
  EXPECT_EQ(c.rope_scaling->beta_fast, 32.0);
  EXPECT_EQ(c.rope_scaling->beta_slow, 1.0);
  EXPECT_EQ(c.rope_scaling->mscale, 1.0);
  EXPECT_EQ(c.rope_scaling->mscale_all_dim, 1.0);
  EXPECT_EQ(c.max_position_embeddings, 163840);
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.vocab_size, 129280);
  EXPECT_EQ(c.num_nextn_predict_layers, 1);
  EXPECT_EQ(c.bos_token_id, 0);
  EXPECT_EQ(c.eos_token_id, 1);
  ASSERT_TRUE(c.quantization.has_value());
  EXPECT_EQ(c.quantization->block_rows, 128);
  EXPECT_EQ(c.quantization->block_cols, 128);
  // Layers 0–2 dense, 3–60 MoE (deepseek-spec §1.1, "Derived").
  for (int l = 0; l < 61; ++l) EXPECT_EQ(c.is_moe_layer(l), l >= 3) << l;
  EXPECT_NEAR(c.softmax_scale(), 0.1352338, 5e-8);  // §2.4
}

TEST(ModelConfig, ParsesDeepSeekV2Lite) {
  const ModelConfig c = parse_model_config(v2_lite_config(), "config.json");
  EXPECT_EQ(c.model_type, ModelType::DeepseekV2);
  EXPECT_EQ(c.hidden_size, 2048);
  EXPECT_EQ(c.num_hidden_layers, 27);
  EXPECT_EQ(c.num_attention_heads, 16);
  EXPECT_EQ(c.q_lora_rank, 0);  // null: no q compression
  EXPECT_EQ(c.kv_lora_rank, 512);
  EXPECT_EQ(c.qk_head_dim(), 192);
  EXPECT_EQ(c.v_head_dim, 128);
  EXPECT_EQ(c.n_routed_experts, 64);
  EXPECT_EQ(c.n_shared_experts, 2);
  EXPECT_EQ(c.num_experts_per_tok, 6);
  EXPECT_EQ(c.n_group, 1);
  EXPECT_EQ(c.topk_group, 1);
  EXPECT_EQ(c.routed_scaling_factor, 1.0);
  EXPECT_EQ(c.scoring_func, ScoringFunc::Softmax);
  EXPECT_EQ(c.topk_method, TopkMethod::Greedy);
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_EQ(c.first_k_dense_replace, 1);
  EXPECT_EQ(c.moe_intermediate_size, 1408);
  EXPECT_EQ(c.intermediate_size, 10944);
  ASSERT_TRUE(c.rope_scaling.has_value());
  EXPECT_EQ(c.rope_scaling->mscale, 0.707);
  EXPECT_EQ(c.rope_scaling->mscale_all_dim, 0.707);
  EXPECT_EQ(c.vocab_size, 102400);
  EXPECT_EQ(c.num_nextn_predict_layers, 0);  // absent
  EXPECT_EQ(c.bos_token_id, 100000);
  EXPECT_EQ(c.eos_token_id, 100001);
  EXPECT_FALSE(c.quantization.has_value());
  for (int l = 0; l < 27; ++l) EXPECT_EQ(c.is_moe_layer(l), l >= 1) << l;
  EXPECT_NEAR(c.softmax_scale(), 0.1147214, 5e-8);  // §2.4
}

TEST(ModelConfig, ParsesDeepSeekV2) {
  // V2 (236B) differs from V2-Lite in the fields below (deepseek-spec §1.1).
  json j = v2_lite_config();
  j["hidden_size"] = 5120;
  j["num_hidden_layers"] = 60;
  j["num_attention_heads"] = 128;
  j["q_lora_rank"] = 1536;
  j["n_routed_experts"] = 160;
  j["num_experts_per_tok"] = 6;
  j["n_group"] = 8;
  j["topk_group"] = 3;
  j["routed_scaling_factor"] = 16.0;
  j["topk_method"] = "group_limited_greedy";
  j["moe_intermediate_size"] = 1536;
  j["intermediate_size"] = 12288;
  const ModelConfig c = parse_model_config(j, "config.json");
  EXPECT_EQ(c.q_lora_rank, 1536);
  EXPECT_EQ(c.topk_method, TopkMethod::GroupLimitedGreedy);
  EXPECT_EQ(c.n_group, 8);
  EXPECT_EQ(c.topk_group, 3);
  EXPECT_EQ(c.routed_scaling_factor, 16.0);
}

TEST(ModelConfig, RejectsMissingRequiredField) {
  for (const char* key : {"hidden_size", "model_type", "num_hidden_layers", "kv_lora_rank", "vocab_size",
                          "rms_norm_eps", "num_experts_per_tok", "scoring_func", "topk_method"}) {
    json j = v3_config();
    j.erase(key);
    EXPECT_THAT(config_error(j), AllOf(HasSubstr("config.json"), HasSubstr(std::string("\"") + key + "\""),
                                       HasSubstr("missing")))
        << key;
  }
  json j = v3_config();
  j["hidden_size"] = nullptr;  // null counts as missing
  EXPECT_THAT(config_error(j), AllOf(HasSubstr("\"hidden_size\""), HasSubstr("missing")));
}

TEST(ModelConfig, RejectsUnknownModelType) {
  json j = v3_config();
  j["model_type"] = "llama";
  EXPECT_THAT(config_error(j), AllOf(HasSubstr("\"model_type\""), HasSubstr("llama")));
}

TEST(ModelConfig, RejectsUnknownTopkMethod) {
  json j = v3_config();
  j["topk_method"] = "random";
  EXPECT_THAT(config_error(j), AllOf(HasSubstr("\"topk_method\""), HasSubstr("random")));
}

TEST(ModelConfig, RejectsUnknownScoringFunc) {
  json j = v3_config();
  j["scoring_func"] = "tanh";
  EXPECT_THAT(config_error(j), AllOf(HasSubstr("\"scoring_func\""), HasSubstr("tanh")));
}

TEST(ModelConfig, RejectsRopeScalingOtherThanYarn) {
  json j = v3_config();
  j["rope_scaling"]["type"] = "linear";
  EXPECT_THAT(config_error(j), AllOf(HasSubstr("rope_scaling"), HasSubstr("linear")));
  j["rope_scaling"].erase("type");
  EXPECT_THAT(config_error(j), HasSubstr("rope_scaling"));
  // The newer key name "rope_type" is read too.
  j["rope_scaling"]["rope_type"] = "dynamic";
  EXPECT_THAT(config_error(j), AllOf(HasSubstr("rope_scaling"), HasSubstr("dynamic")));
  j["rope_scaling"]["rope_type"] = "yarn";
  EXPECT_NO_THROW(parse_model_config(j, "config.json"));
  j["rope_scaling"] = 40;
  EXPECT_THAT(config_error(j), HasSubstr("rope_scaling"));
  // null: no scaling.
  j["rope_scaling"] = nullptr;
  EXPECT_FALSE(parse_model_config(j, "config.json").rope_scaling.has_value());
}

TEST(ModelConfig, RejectsWrongTypes) {
  struct Case {
    const char* key;
    json value;
  };
  const Case cases[] = {
      {"hidden_size", "7168"},        {"num_hidden_layers", 61.5}, {"num_attention_heads", true},
      {"n_routed_experts", "256"},    {"q_lora_rank", "1536"},     {"rms_norm_eps", "1e-6"},
      {"norm_topk_prob", "true"},     {"model_type", 3},           {"topk_method", json::array()},
      {"routed_scaling_factor", "x"},
  };
  for (const Case& c : cases) {
    json j = v3_config();
    j[c.key] = c.value;
    EXPECT_THAT(config_error(j), AllOf(HasSubstr(std::string("\"") + c.key + "\""), HasSubstr("must be")))
        << c.key << " = " << c.value.dump();
  }
}

TEST(ModelConfig, RejectsOutOfRangeIntegers) {
  const std::vector<std::pair<std::string, int>> cases = {
      {"hidden_size", 0}, {"num_hidden_layers", -1}, {"q_lora_rank", -5}};
  for (const auto& [key, value] : cases) {
    json j = v3_config();
    j[key] = value;
    EXPECT_THAT(config_error(j), AllOf(HasSubstr("\"" + key + "\""), HasSubstr("out of range"))) << key;
  }
  json j = v3_config();
  j["vocab_size"] = int64_t{1} << 40;
  EXPECT_THAT(config_error(j), HasSubstr("\"vocab_size\""));
}

TEST(ModelConfig, RejectsMoreExpertsPerTokenThanExperts) {
  json j = v3_config();
  j["num_experts_per_tok"] = 257;
  EXPECT_THAT(config_error(j), AllOf(HasSubstr("\"num_experts_per_tok\""), HasSubstr("257"), HasSubstr("256")));
}

TEST(ModelConfig, RejectsGroupCountNotDividingExperts) {
  json j = v3_config();
  j["n_group"] = 7;
  EXPECT_THAT(config_error(j), AllOf(HasSubstr("\"n_group\""), HasSubstr("7"), HasSubstr("256")));
}

TEST(ModelConfig, RejectsInconsistentGroups) {
  json j = v3_config();
  j["topk_group"] = 9;
  EXPECT_THAT(config_error(j), HasSubstr("\"topk_group\""));
  // 8 groups of 32, 1 kept: 32 ≥ 8 experts, fine; 256 groups of 1 cannot be scored by their two best.
  j["topk_group"] = 1;
  EXPECT_NO_THROW(parse_model_config(j, "config.json"));
  j["n_group"] = 256;
  j["topk_group"] = 8;
  EXPECT_THAT(config_error(j), HasSubstr("\"n_group\""));
  // Kept groups hold fewer experts than num_experts_per_tok: 64 groups of 4, 1 kept → 4 < 8.
  j["n_group"] = 64;
  j["topk_group"] = 1;
  EXPECT_THAT(config_error(j), HasSubstr("\"topk_group\""));
}

TEST(ModelConfig, RejectsQuantMethodOtherThanFp8) {
  json j = v3_config();
  j["quantization_config"]["quant_method"] = "awq";
  EXPECT_THAT(config_error(j), AllOf(HasSubstr("quantization_config"), HasSubstr("\"quant_method\""),
                                     HasSubstr("awq")));
  j = v3_config();
  j["quantization_config"]["fmt"] = "e5m2";
  EXPECT_THAT(config_error(j), HasSubstr("\"fmt\""));
  j = v3_config();
  j["quantization_config"]["weight_block_size"] = json::array({128});
  EXPECT_THAT(config_error(j), HasSubstr("\"weight_block_size\""));
  j["quantization_config"]["weight_block_size"] = json::array({0, 128});
  EXPECT_THAT(config_error(j), HasSubstr("\"weight_block_size\""));
  j["quantization_config"]["weight_block_size"] = json::array({64, 32});
  const ModelConfig c = parse_model_config(j, "config.json");
  EXPECT_EQ(c.quantization->block_rows, 64);
  EXPECT_EQ(c.quantization->block_cols, 32);
}

TEST(ModelConfig, WhaleQuantization) {
  json j = v3_config();
  j["quantization_config"] = {
      {"quant_method", "whale"}, {"format", "q4"}, {"group_size", 32}, {"row_interleave", 16}, {"scales", "inline"}};
  ModelConfig c = parse_model_config(j, "config.json");
  EXPECT_EQ(c.whale_quant, QuantType::Q4);
  EXPECT_FALSE(c.quantization.has_value());
  j["quantization_config"]["format"] = "q8";
  EXPECT_EQ(parse_model_config(j, "config.json").whale_quant, QuantType::Q8);
  EXPECT_FALSE(parse_model_config(v3_config(), "config.json").whale_quant.has_value());

  j["quantization_config"]["format"] = "q3";
  EXPECT_THAT(config_error(j), AllOf(HasSubstr("config.json"), HasSubstr("quantization_config"),
                                     HasSubstr("\"format\""), HasSubstr("q3")));
  j["quantization_config"]["format"] = "q8";
  j["quantization_config"]["group_size"] = 64;
  EXPECT_THAT(config_error(j), AllOf(HasSubstr("\"group_size\""), HasSubstr("64")));
  j["quantization_config"]["group_size"] = 32;
  j["quantization_config"]["row_interleave"] = "4";
  EXPECT_THAT(config_error(j), HasSubstr("\"row_interleave\""));
  j["quantization_config"].erase("row_interleave");
  EXPECT_THAT(config_error(j), AllOf(HasSubstr("\"row_interleave\""), HasSubstr("missing")));
  j["quantization_config"]["row_interleave"] = 16;
  // A checkpoint of the layout before session 43 (scales in NAME_scale tensors) has no "scales": re-quantize.
  j["quantization_config"].erase("scales");
  EXPECT_THAT(config_error(j), AllOf(HasSubstr("\"scales\""), HasSubstr("quantize the original checkpoint again")));
  j["quantization_config"]["scales"] = "separate";
  EXPECT_THAT(config_error(j), AllOf(HasSubstr("\"scales\""), HasSubstr("separate")));
  j["quantization_config"] = "whale";
  EXPECT_THAT(config_error(j), HasSubstr("\"quantization_config\""));
}

TEST(ModelConfig, RejectsUnsupportedFeatures) {
  const std::vector<std::pair<std::string, json>> cases = {
      {"hidden_act", "gelu"}, {"tie_word_embeddings", true}, {"attention_bias", true}};
  for (const auto& [key, value] : cases) {
    json j = v3_config();
    j[key] = value;
    EXPECT_THAT(config_error(j), HasSubstr("\"" + key + "\"")) << key;
  }
}

TEST(ModelConfig, RejectsNonObject) {
  EXPECT_THAT(config_error(json::array()), HasSubstr("config.json"));
  EXPECT_THAT(config_error(json("text")), HasSubstr("config.json"));
}

TEST(ModelConfig, LoadFromDirectory) {
  std::string pattern = (std::filesystem::temp_directory_path() / "whale_config_test_XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const std::filesystem::path dir = pattern;
  const auto error_of = [](const std::filesystem::path& p) -> std::string {
    try {
      load_model_config(p);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_THAT(error_of(dir), AllOf(HasSubstr("config.json"), HasSubstr("cannot open")));
  std::ofstream(dir / "config.json") << "{ not json";
  EXPECT_THAT(error_of(dir), AllOf(HasSubstr((dir / "config.json").string()), HasSubstr("not valid JSON")));
  std::ofstream(dir / "config.json") << v2_lite_config().dump();
  EXPECT_EQ(load_model_config(dir).hidden_size, 2048);
  json broken = v2_lite_config();
  broken.erase("vocab_size");
  std::ofstream(dir / "config.json") << broken.dump();
  EXPECT_THAT(error_of(dir), AllOf(HasSubstr((dir / "config.json").string()), HasSubstr("\"vocab_size\"")));
  EXPECT_THAT(error_of(dir / "missing"), HasSubstr("not found"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace whale
