#include "whale/model/router.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "whale/kernels/activations.h"

namespace whale {
namespace router_detail {

void score(ScoringFunc f, const float* logits, int n, float* out) {
  std::copy(logits, logits + n, out);
  if (f == ScoringFunc::Softmax) {
    softmax_inplace(out, n);
  } else {
    for (int i = 0; i < n; ++i) out[i] = sigmoid(out[i]);
  }
}

void top_k(std::span<const float> values, int k, int32_t* out) {
  std::vector<int32_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  // NaN ranks below everything, so the comparator stays a strict weak order whatever the scores hold.
  auto key = [&](int32_t i) { return std::isnan(values[i]) ? -std::numeric_limits<float>::infinity() : values[i]; };
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
    const float va = key(a), vb = key(b);
    return va > vb || (va == vb && a < b);
  });
  std::copy(order.begin(), order.begin() + k, out);
}

void softmax_router_weights(const RouterParams& p, const float* scores, const int32_t* ids, float* weights) {
  double sum = 0.0;
  for (int k = 0; k < p.top_k; ++k) {
    weights[k] = scores[ids[k]];
    sum += weights[k];
  }
  // DeepSeek-V2 remote code: normalise when asked (and k > 1), otherwise multiply by routed_scaling_factor.
  if (p.top_k > 1 && p.norm_topk_prob) {
    for (int k = 0; k < p.top_k; ++k) weights[k] = static_cast<float>(weights[k] / (sum + 1e-20));
  } else {
    for (int k = 0; k < p.top_k; ++k) weights[k] *= p.routed_scaling_factor;
  }
}

}  // namespace router_detail

RouterParams router_params(const ModelConfig& c, const float* correction_bias) {
  RouterParams p;
  p.n_experts = c.n_routed_experts;
  p.top_k = c.num_experts_per_tok;
  p.n_group = c.n_group;
  p.topk_group = c.topk_group;
  p.scoring = c.scoring_func;
  p.norm_topk_prob = c.norm_topk_prob;
  p.routed_scaling_factor = static_cast<float>(c.routed_scaling_factor);
  p.correction_bias = correction_bias;
  return p;
}

RouterFn make_router(TopkMethod method) {
  switch (method) {
    case TopkMethod::Greedy: return route_greedy;
    case TopkMethod::GroupLimitedGreedy: return route_group_limited_greedy;
    case TopkMethod::NoauxTc: return route_noaux_tc;
  }
  return route_greedy;
}

}  // namespace whale
