// MoE routers: from one token's router logits to the chosen experts and their weights (deepseek-spec §2.8).
// Each topk_method has its own function with the same signature; make_router picks one at load.
#pragma once

#include <cstdint>
#include <span>

#include "whale/model/config.h"

namespace whale {

struct RouterParams {
  int n_experts = 0;
  int top_k = 0;
  int n_group = 1;
  int topk_group = 1;
  ScoringFunc scoring = ScoringFunc::Softmax;
  bool norm_topk_prob = false;
  float routed_scaling_factor = 1.0f;
  const float* correction_bias = nullptr;  // noaux_tc: e_score_correction_bias, used only to select
};

// The router settings of a config's MoE layers; correction_bias is the layer's e_score_correction_bias or null.
RouterParams router_params(const ModelConfig& c, const float* correction_bias);

// Writes top_k expert ids (best first; ties go to the lower id) and their weights.
// logits: [n_experts] router logits of one token.
using RouterFn = void (*)(const RouterParams& p, const float* logits, int32_t* ids, float* weights);

// V2-Lite: softmax scores, plain top-k.
void route_greedy(const RouterParams& p, const float* logits, int32_t* ids, float* weights);
// V2: softmax scores, groups ranked by their best score, top-k inside the topk_group best groups.
void route_group_limited_greedy(const RouterParams& p, const float* logits, int32_t* ids, float* weights);
// V3/R1: sigmoid scores; bias-corrected scores rank groups (sum of their two best) and experts; weights come from
// the unbiased scores, renormalised, times routed_scaling_factor.
void route_noaux_tc(const RouterParams& p, const float* logits, int32_t* ids, float* weights);

RouterFn make_router(TopkMethod method);

namespace router_detail {
// Scores from logits by the scoring function: softmax over all experts, or elementwise sigmoid.
void score(ScoringFunc f, const float* logits, int n, float* out);
// Indices of the k largest values (descending; ties to the lower index). Entries equal to -inf are never chosen
// before finite ones.
void top_k(std::span<const float> values, int k, int32_t* out);
// Final weights of greedy and group-limited routing: normalised when norm_topk_prob and k > 1, else scaled.
void softmax_router_weights(const RouterParams& p, const float* scores, const int32_t* ids, float* weights);
}  // namespace router_detail

}  // namespace whale
