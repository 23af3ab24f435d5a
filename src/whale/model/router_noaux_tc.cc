#include <algorithm>
#include <functional>
#include <limits>
#include <vector>

#include "whale/model/router.h"

namespace whale {

void route_noaux_tc(const RouterParams& p, const float* logits, int32_t* ids, float* weights) {
  std::vector<float> scores(p.n_experts);
  router_detail::score(p.scoring, logits, p.n_experts, scores.data());
  std::vector<float> biased(scores);
  if (p.correction_bias)
    for (int e = 0; e < p.n_experts; ++e) biased[e] += p.correction_bias[e];

  const int group_size = p.n_experts / p.n_group;
  std::vector<float> group_score(p.n_group);
  for (int g = 0; g < p.n_group; ++g) {
    std::vector<float> members(biased.begin() + g * group_size, biased.begin() + (g + 1) * group_size);
    std::partial_sort(members.begin(), members.begin() + 2, members.end(), std::greater<float>());
    group_score[g] = members[0] + members[1];
  }
  std::vector<int32_t> groups(p.topk_group);
  router_detail::top_k(group_score, p.topk_group, groups.data());

  // Experts outside the chosen groups are masked to -inf (official inference/model.py since "fix scores mask").
  std::vector<float> allowed(p.n_experts, -std::numeric_limits<float>::infinity());
  for (int32_t g : groups)
    std::copy(biased.begin() + g * group_size, biased.begin() + (g + 1) * group_size, allowed.begin() + g * group_size);
  router_detail::top_k(allowed, p.top_k, ids);

  double sum = 0.0;
  for (int k = 0; k < p.top_k; ++k) {
    weights[k] = scores[ids[k]];
    sum += weights[k];
  }
  for (int k = 0; k < p.top_k; ++k) {
    const double w = p.norm_topk_prob ? weights[k] / sum : weights[k];
    weights[k] = static_cast<float>(w * p.routed_scaling_factor);
  }
}

}  // namespace whale
