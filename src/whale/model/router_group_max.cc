#include <algorithm>
#include <limits>
#include <vector>

#include "whale/model/router.h"

namespace whale {

void route_group_limited_greedy(const RouterParams& p, const float* logits, int32_t* ids, float* weights) {
  std::vector<float> scores(p.n_experts);
  router_detail::score(p.scoring, logits, p.n_experts, scores.data());

  const int group_size = p.n_experts / p.n_group;
  std::vector<float> group_score(p.n_group);
  for (int g = 0; g < p.n_group; ++g)
    group_score[g] = *std::max_element(scores.begin() + g * group_size, scores.begin() + (g + 1) * group_size);
  std::vector<int32_t> groups(p.topk_group);
  router_detail::top_k(group_score, p.topk_group, groups.data());

  std::vector<float> allowed(p.n_experts, -std::numeric_limits<float>::infinity());
  for (int32_t g : groups)
    std::copy(scores.begin() + g * group_size, scores.begin() + (g + 1) * group_size, allowed.begin() + g * group_size);
  router_detail::top_k(allowed, p.top_k, ids);
  router_detail::softmax_router_weights(p, scores.data(), ids, weights);
}

}  // namespace whale
