#include <vector>

#include "whale/model/router.h"

namespace whale {

void route_greedy(const RouterParams& p, const float* logits, int32_t* ids, float* weights) {
  std::vector<float> scores(p.n_experts);
  router_detail::score(p.scoring, logits, p.n_experts, scores.data());
  router_detail::top_k(scores, p.top_k, ids);
  router_detail::softmax_router_weights(p, scores.data(), ids, weights);
}

}  // namespace whale
