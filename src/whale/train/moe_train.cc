#include "whale/train/moe_train.h"

#include <algorithm>
#include <numeric>

#include "whale/model/router.h"
#include "whale/train/ops.h"

namespace whale::train {
namespace {

// Experts dealt to threads largest first, each to the least loaded thread (deterministic for given counts), so that
// one parallel_for slice per thread runs whole experts with serial products.
std::vector<std::vector<int>> deal_experts(const std::vector<int64_t>& counts, int threads) {
  std::vector<int> order(counts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return counts[a] > counts[b]; });
  std::vector<std::vector<int>> bins(static_cast<size_t>(threads));
  std::vector<int64_t> load(static_cast<size_t>(threads), 0);
  for (int e : order) {
    if (counts[e] == 0) continue;
    const size_t t = std::min_element(load.begin(), load.end()) - load.begin();
    bins[t].push_back(e);
    load[t] += counts[e];
  }
  return bins;
}

void for_each_expert(ThreadPool& pool, const std::vector<int64_t>& counts, const std::function<void(int)>& fn) {
  const std::vector<std::vector<int>> bins = deal_experts(counts, pool.size());
  pool.parallel_for(static_cast<int64_t>(bins.size()), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      for (int e : bins[b]) fn(e);
  });
}

// out[n] (+= when accumulate, else =) Σ_k g[n, k] · rows[e][slot] over token n's experts e = ids[n, k], with g the
// gate weights, or 1 when weights is null: the forward's combination of expert outputs, and the backward's of their
// input gradients.
void combine_expert_rows(ThreadPool& pool, const MoeActivations& act, const std::vector<std::vector<float>>& rows,
                         const float* weights, int64_t N, int64_t K, int64_t D, bool accumulate, float* out) {
  pool.parallel_for(N, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      float* o = out + n * D;
      if (!accumulate) std::fill(o, o + D, 0.0f);
      for (int64_t k = 0; k < K; ++k) {
        const int64_t a = n * K + k;
        const float* y = rows[act.ids[a]].data() + act.slot[a] * D;
        const float g = weights ? weights[a] : 1.0f;
        for (int64_t i = 0; i < D; ++i) o[i] += g * y[i];
      }
    }
  });
}

// How the routers of model/router.h turn the selected scores into gate weights (for their derivative).
bool normalized_weights(const ModelConfig& c) {
  if (c.topk_method == TopkMethod::NoauxTc) return c.norm_topk_prob;
  return c.norm_topk_prob && c.num_experts_per_tok > 1;
}

// The factor applied after the optional normalisation (greedy routers do not scale normalised weights).
double weight_scale(const ModelConfig& c) {
  if (c.topk_method == TopkMethod::NoauxTc) return c.routed_scaling_factor;
  return normalized_weights(c) ? 1.0 : c.routed_scaling_factor;
}

}  // namespace

void mlp_forward(ThreadPool* pool, const TMlp& w, const float* x, int64_t N, MlpActivations& act, float* out,
                 bool accumulate) {
  const int64_t D = w.gate.cols, I = w.gate.rows;
  resize_buffer(act.g, N * I);
  resize_buffer(act.u, N * I);
  resize_buffer(act.h, N * I);
  linear_forward(pool, x, w.gate.w, act.g.data(), N, D, I);
  linear_forward(pool, x, w.up.w, act.u.data(), N, D, I);
  swiglu_forward(pool, act.g.data(), act.u.data(), act.h.data(), N * I);
  linear_forward(pool, act.h.data(), w.down.w, out, N, I, D, accumulate);
}

void mlp_backward(ThreadPool* pool, const TMlp& w, const float* x, int64_t N, const MlpActivations& act,
                  const float* dout, float* dx, bool accumulate_dx) {
  const int64_t D = w.gate.cols, I = w.gate.rows;
  std::vector<float> dh(static_cast<size_t>(N * I)), dg(static_cast<size_t>(N * I)), du(static_cast<size_t>(N * I));
  linear_backward(pool, act.h.data(), w.down.w, dout, dh.data(), w.down.g, N, I, D);
  swiglu_backward(pool, act.g.data(), act.u.data(), dh.data(), dg.data(), du.data(), N * I);
  linear_backward(pool, x, w.gate.w, dg.data(), dx, w.gate.g, N, D, I, accumulate_dx);
  linear_backward(pool, x, w.up.w, du.data(), dx, w.up.g, N, D, I, true);
}

double moe_forward(ThreadPool& pool, const TMoe& w, const ModelConfig& c, const float* x, int64_t B, int64_t T,
                   float balance_alpha, MoeActivations& act, float* out) {
  const int64_t N = B * T, D = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok;

  // Router: logits, then the inference router's selection and gate weights; the scores are kept for the backward.
  std::vector<float> logits(static_cast<size_t>(N * E));
  linear_forward(&pool, x, w.router.w, logits.data(), N, D, E);
  resize_buffer(act.scores, N * E);
  act.ids.assign(static_cast<size_t>(N * K), 0);
  resize_buffer(act.weights, N * K);
  const RouterParams rp = router_params(c, w.bias);
  const RouterFn route = make_router(c.topk_method);
  pool.parallel_for(N, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      router_detail::score(c.scoring_func, logits.data() + n * E, static_cast<int>(E), act.scores.data() + n * E);
      route(rp, logits.data() + n * E, act.ids.data() + n * K, act.weights.data() + n * K);
    }
  });

  // Group the (token, slot) pairs by expert.
  act.assignments.assign(static_cast<size_t>(E), {});
  act.slot.assign(static_cast<size_t>(N * K), 0);
  for (int64_t a = 0; a < N * K; ++a) {
    auto& list = act.assignments[act.ids[a]];
    act.slot[a] = static_cast<int32_t>(list.size());
    list.push_back(static_cast<int32_t>(a));
  }
  act.counts.assign(static_cast<size_t>(E), 0);
  for (int64_t e = 0; e < E; ++e) act.counts[e] = static_cast<int64_t>(act.assignments[e].size());

  act.experts.resize(static_cast<size_t>(E));
  act.expert_out.resize(static_cast<size_t>(E));
  for_each_expert(pool, act.counts, [&](int e) {
    const auto& list = act.assignments[e];
    const int64_t ne = static_cast<int64_t>(list.size());
    std::vector<float> xe(static_cast<size_t>(ne * D));
    for (int64_t j = 0; j < ne; ++j) std::copy(x + (list[j] / K) * D, x + (list[j] / K + 1) * D, xe.data() + j * D);
    resize_buffer(act.expert_out[e], ne * D);
    mlp_forward(nullptr, w.experts[e], xe.data(), ne, act.experts[e], act.expert_out[e].data());
  });

  if (w.shared) mlp_forward(&pool, *w.shared, x, N, act.shared, out);
  combine_expert_rows(pool, act, act.expert_out, act.weights.data(), N, K, D, w.shared.has_value(), out);

  // Sequence-wise balance loss: f_i = E/(K·T) · (selections of i in the window), P_i = mean_t s_i / Σ_j s_j.
  act.balance_f.clear();
  if (balance_alpha == 0.0f) return 0.0;
  act.balance_f.assign(static_cast<size_t>(B * E), 0.0f);
  double loss = 0.0;
  for (int64_t b = 0; b < B; ++b) {
    float* f = act.balance_f.data() + b * E;
    std::vector<double> P(static_cast<size_t>(E), 0.0);
    for (int64_t t = 0; t < T; ++t) {
      const int64_t n = b * T + t;
      for (int64_t k = 0; k < K; ++k) f[act.ids[n * K + k]] += 1.0f;
      const float* s = act.scores.data() + n * E;
      double z = 0.0;
      for (int64_t e = 0; e < E; ++e) z += s[e];
      for (int64_t e = 0; e < E; ++e) P[e] += s[e] / z / T;
    }
    for (int64_t e = 0; e < E; ++e) {
      f[e] = static_cast<float>(f[e] * static_cast<double>(E) / (static_cast<double>(K) * T));
      loss += f[e] * P[e];
    }
  }
  return balance_alpha * loss / B;
}

void moe_backward(ThreadPool& pool, const TMoe& w, const ModelConfig& c, const float* x, int64_t B, int64_t T,
                  float balance_alpha, const MoeActivations& act, const float* dout, float* dx) {
  const int64_t N = B * T, D = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok;

  // Gate weights: dw[a] = <expert output, dout[n]>.
  std::vector<float> dweights(static_cast<size_t>(N * K));
  pool.parallel_for(N * K, [&](int64_t a0, int64_t a1) {
    for (int64_t a = a0; a < a1; ++a) {
      const float* y = act.expert_out[act.ids[a]].data() + act.slot[a] * D;
      const float* d = dout + (a / K) * D;
      double dot = 0.0;
      for (int64_t i = 0; i < D; ++i) dot += static_cast<double>(y[i]) * d[i];
      dweights[a] = static_cast<float>(dot);
    }
  });

  // Routed experts: each over its own rows; input gradients per expert row, gathered afterwards.
  std::vector<std::vector<float>> dxe(static_cast<size_t>(E));
  for_each_expert(pool, act.counts, [&](int e) {
    const auto& list = act.assignments[e];
    const int64_t ne = static_cast<int64_t>(list.size());
    std::vector<float> xe(static_cast<size_t>(ne * D)), dye(static_cast<size_t>(ne * D));
    for (int64_t j = 0; j < ne; ++j) {
      const int64_t n = list[j] / K;
      std::copy(x + n * D, x + (n + 1) * D, xe.data() + j * D);
      const float g = act.weights[list[j]];
      for (int64_t i = 0; i < D; ++i) dye[j * D + i] = g * dout[n * D + i];
    }
    resize_buffer(dxe[e], ne * D);
    mlp_backward(nullptr, w.experts[e], xe.data(), ne, act.experts[e], dye.data(), dxe[e].data());
  });

  if (w.shared) mlp_backward(&pool, *w.shared, x, N, act.shared, dout, dx);
  combine_expert_rows(pool, act, dxe, nullptr, N, K, D, w.shared.has_value(), dx);

  // Router: gate weights → scores → logits.
  const bool normalize = normalized_weights(c);
  const double scale = weight_scale(c);
  std::vector<float> dlogits(static_cast<size_t>(N * E));
  pool.parallel_for(N, [&](int64_t n0, int64_t n1) {
    std::vector<double> ds(static_cast<size_t>(E));
    for (int64_t n = n0; n < n1; ++n) {
      const float* s = act.scores.data() + n * E;
      const int32_t* ids = act.ids.data() + n * K;
      const float* dw = dweights.data() + n * K;
      std::fill(ds.begin(), ds.end(), 0.0);
      if (normalize) {
        double sum = 0.0, dot = 0.0;
        for (int64_t k = 0; k < K; ++k) {
          sum += s[ids[k]];
          dot += static_cast<double>(dw[k]) * s[ids[k]];
        }
        for (int64_t k = 0; k < K; ++k) ds[ids[k]] += scale * (dw[k] / sum - dot / (sum * sum));
      } else {
        for (int64_t k = 0; k < K; ++k) ds[ids[k]] += scale * dw[k];
      }
      if (balance_alpha != 0.0f) {
        // L_bal = α/B · Σ_i f_i · (1/T) Σ_t s_i,t / z_t: ∂/∂s_j,t = (g_j − Σ_i g_i s_i,t / z_t) / z_t, g_i = α f_i / (B·T).
        const float* f = act.balance_f.data() + (n / T) * E;
        double z = 0.0, gs = 0.0;
        for (int64_t e = 0; e < E; ++e) z += s[e];
        for (int64_t e = 0; e < E; ++e) gs += static_cast<double>(f[e]) * s[e];
        const double coef = static_cast<double>(balance_alpha) / (static_cast<double>(B) * T);
        for (int64_t e = 0; e < E; ++e) ds[e] += coef * (f[e] - gs / z) / z;
      }
      float* dl = dlogits.data() + n * E;
      if (c.scoring_func == ScoringFunc::Sigmoid) {
        for (int64_t e = 0; e < E; ++e) dl[e] = static_cast<float>(ds[e] * s[e] * (1.0 - s[e]));
      } else {
        double dot = 0.0;
        for (int64_t e = 0; e < E; ++e) dot += ds[e] * s[e];
        for (int64_t e = 0; e < E; ++e) dl[e] = static_cast<float>(s[e] * (ds[e] - dot));
      }
    }
  });
  linear_backward(&pool, x, w.router.w, dlogits.data(), dx, w.router.g, N, D, E, true);
}

}  // namespace whale::train
