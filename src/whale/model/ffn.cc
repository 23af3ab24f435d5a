#include "whale/model/ffn.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "whale/kernels/activations.h"
#include "whale/kernels/matmul.h"

namespace whale {

void mlp_forward(const MlpWeights& w, const float* x, int n_tokens, float* out, ThreadPool& pool) {
  const int64_t inter = w.gate_proj.rows();
  std::vector<float> gate(static_cast<size_t>(n_tokens) * inter), up(gate.size());
  matmul(w.gate_proj.view(), x, n_tokens, gate.data(), pool);
  matmul(w.up_proj.view(), x, n_tokens, up.data(), pool);
  swiglu_inplace(gate.data(), up.data(), static_cast<int64_t>(gate.size()));
  matmul(w.down_proj.view(), gate.data(), n_tokens, out, pool);
}

void moe_forward(const ModelConfig& c, const MoeWeights& w, RouterFn router, const float* x, int n_tokens,
                 float* out, ThreadPool& pool) {
  const int hidden = c.hidden_size, n_experts = c.n_routed_experts, top_k = c.num_experts_per_tok;
  std::vector<float> logits(static_cast<size_t>(n_tokens) * n_experts);
  matmul(w.gate.view(), x, n_tokens, logits.data(), pool);

  RouterParams params;
  params.n_experts = n_experts;
  params.top_k = top_k;
  params.n_group = c.n_group;
  params.topk_group = c.topk_group;
  params.scoring = c.scoring_func;
  params.norm_topk_prob = c.norm_topk_prob;
  params.routed_scaling_factor = static_cast<float>(c.routed_scaling_factor);
  params.correction_bias = w.e_score_correction_bias.empty() ? nullptr : w.e_score_correction_bias.data();

  std::vector<int32_t> ids(static_cast<size_t>(n_tokens) * top_k);
  std::vector<float> weights(ids.size());
  for (int t = 0; t < n_tokens; ++t)
    router(params, logits.data() + static_cast<size_t>(t) * n_experts, ids.data() + t * top_k,
           weights.data() + t * top_k);

  // Per expert, the tokens routed to it (ascending token order) and their gate weights.
  std::vector<std::vector<std::pair<int, float>>> assigned(n_experts);
  for (int t = 0; t < n_tokens; ++t)
    for (int k = 0; k < top_k; ++k) assigned[ids[t * top_k + k]].emplace_back(t, weights[t * top_k + k]);

  std::fill(out, out + static_cast<size_t>(n_tokens) * hidden, 0.0f);
  std::vector<float> xs, ys;
  for (int e = 0; e < n_experts; ++e) {
    const auto& list = assigned[e];
    if (list.empty()) continue;
    const int m = static_cast<int>(list.size());
    xs.resize(static_cast<size_t>(m) * hidden);
    ys.resize(xs.size());
    for (int i = 0; i < m; ++i)
      std::copy_n(x + static_cast<size_t>(list[i].first) * hidden, hidden, xs.data() + static_cast<size_t>(i) * hidden);
    mlp_forward(w.experts[e], xs.data(), m, ys.data(), pool);
    for (int i = 0; i < m; ++i) {
      float* dst = out + static_cast<size_t>(list[i].first) * hidden;
      const float* src = ys.data() + static_cast<size_t>(i) * hidden;
      for (int j = 0; j < hidden; ++j) dst[j] += list[i].second * src[j];
    }
  }

  if (w.shared_experts) {
    ys.resize(static_cast<size_t>(n_tokens) * hidden);
    mlp_forward(*w.shared_experts, x, n_tokens, ys.data(), pool);
    for (size_t i = 0; i < ys.size(); ++i) out[i] += ys[i];
  }
}

}  // namespace whale
