#include "whale/model/ffn.h"

#include <algorithm>
#include <vector>

#include "whale/kernels/activations.h"
#include "whale/kernels/matmul.h"

namespace whale {

void mlp_forward(const MlpWeights& w, const float* x, int n_tokens, float* out, ThreadPool& pool) {
  const int64_t inter = w.gate_proj.rows();
  std::vector<float> gate(static_cast<size_t>(n_tokens) * inter), up(gate.size());
  const MatmulJob gate_up[] = {{w.gate_proj.view(), x, n_tokens, gate.data()}, {w.up_proj.view(), x, n_tokens, up.data()}};
  matmul_batch(gate_up, pool);
  swiglu_inplace(gate.data(), up.data(), static_cast<int64_t>(gate.size()));
  matmul(w.down_proj.view(), gate.data(), n_tokens, out, pool);
}

void moe_forward(const ModelConfig& c, const MoeWeights& w, RouterFn router, const float* x, int n_tokens,
                 float* out, ThreadPool& pool) {
  const int hidden = c.hidden_size, n_experts = c.n_routed_experts, top_k = c.num_experts_per_tok;
  const size_t T = static_cast<size_t>(n_tokens);

  // The router and the shared experts' gate and up read the same input: one pass.
  std::vector<float> logits(T * n_experts), shared_gate, shared_up;
  std::vector<MatmulJob> jobs = {{w.gate.view(), x, n_tokens, logits.data()}};
  if (w.shared_experts) {
    const int64_t si = w.shared_experts->gate_proj.rows();
    shared_gate.resize(T * si);
    shared_up.resize(T * si);
    jobs.push_back({w.shared_experts->gate_proj.view(), x, n_tokens, shared_gate.data()});
    jobs.push_back({w.shared_experts->up_proj.view(), x, n_tokens, shared_up.data()});
  }
  matmul_batch(jobs, pool);

  const RouterParams params =
      router_params(c, w.e_score_correction_bias.empty() ? nullptr : w.e_score_correction_bias.data());

  std::vector<int32_t> ids(T * top_k);
  std::vector<float> weights(ids.size());
  for (size_t t = 0; t < T; ++t)
    router(params, logits.data() + t * n_experts, ids.data() + t * top_k, weights.data() + t * top_k);

  // Per expert, the tokens routed to it (ascending token order) and their gate weights.
  std::vector<std::vector<std::pair<int, float>>> assigned(n_experts);
  for (size_t t = 0; t < T; ++t)
    for (int k = 0; k < top_k; ++k)
      assigned[ids[t * top_k + k]].emplace_back(static_cast<int>(t), weights[t * top_k + k]);

  // Every active expert's gate and up in one pass, then every down (and the shared experts' down) in another:
  // only the routed experts' weights are read, each once.
  struct Active {
    int expert;
    int64_t m;
    size_t x_at, h_at;  // offsets into xs ([m, hidden]) and gate/up ([m, inter])
  };
  std::vector<Active> active;
  size_t x_total = 0, h_total = 0;
  const int64_t inter = c.moe_intermediate_size;
  for (int e = 0; e < n_experts; ++e) {
    const int64_t m = static_cast<int64_t>(assigned[e].size());
    if (m == 0) continue;
    active.push_back({e, m, x_total, h_total});
    x_total += static_cast<size_t>(m) * hidden;
    h_total += static_cast<size_t>(m) * inter;
  }
  std::vector<float> xs(x_total), gate(h_total), up(h_total), ys(x_total);
  jobs.clear();
  for (const Active& a : active) {
    // An expert with one token reads that token's row in place: in decode every expert then shares one input, which
    // matmul_batch converts once for all of them instead of once per expert.
    const float* in = x + static_cast<size_t>(assigned[a.expert].front().first) * hidden;
    if (a.m > 1) {
      float* dst = xs.data() + a.x_at;
      for (const auto& [t, _] : assigned[a.expert])
        dst = std::copy_n(x + static_cast<size_t>(t) * hidden, hidden, dst);
      in = xs.data() + a.x_at;
    }
    const MlpWeights& e = w.experts[a.expert];
    jobs.push_back({e.gate_proj.view(), in, a.m, gate.data() + a.h_at});
    jobs.push_back({e.up_proj.view(), in, a.m, up.data() + a.h_at});
  }
  matmul_batch(jobs, pool);
  swiglu_inplace(gate.data(), up.data(), static_cast<int64_t>(h_total));
  if (w.shared_experts) swiglu_inplace(shared_gate.data(), shared_up.data(), static_cast<int64_t>(shared_gate.size()));

  jobs.clear();
  for (const Active& a : active)
    jobs.push_back({w.experts[a.expert].down_proj.view(), gate.data() + a.h_at, a.m, ys.data() + a.x_at});
  std::vector<float> shared_out;
  if (w.shared_experts) {
    shared_out.resize(T * hidden);
    jobs.push_back({w.shared_experts->down_proj.view(), shared_gate.data(), n_tokens, shared_out.data()});
  }
  matmul_batch(jobs, pool);

  std::fill(out, out + T * hidden, 0.0f);
  for (const Active& a : active) {
    const float* src = ys.data() + a.x_at;
    for (const auto& [t, weight] : assigned[a.expert]) {
      float* dst = out + static_cast<size_t>(t) * hidden;
      for (int j = 0; j < hidden; ++j) dst[j] += weight * src[j];
      src += hidden;
    }
  }
  for (size_t i = 0; i < shared_out.size(); ++i) out[i] += shared_out[i];
}

}  // namespace whale
