#include "whale/train/mla_train.h"

#include "whale/train/blas.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace whale::train {
namespace {

struct Dims {
  int64_t H, dn, dr, dv, dqk, r, rq, D;
  int64_t ldq() const { return H * dqk; }
  int64_t ldkv() const { return H * (dn + dv); }
  int64_t ldo() const { return H * dv; }
};

Dims dims_of(const ModelConfig& c) {
  return {c.num_attention_heads, c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim, c.qk_head_dim(),
          c.kv_lora_rank, c.q_lora_rank, c.hidden_size};
}

// Per (window, head): S = σ·(q_nope·k_nopeᵀ + q_rope·k_ropeᵀ), causal softmax into P, O = P·V.
void attention_core_forward(ThreadPool& pool, const Dims& d, int64_t B, int64_t T, float sigma, MlaActivations& act) {
  pool.parallel_for(B * d.H, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / d.H, h = i % d.H;
      const float* q = act.q.data() + b * T * d.ldq() + h * d.dqk;
      const float* kv = act.kv.data() + b * T * d.ldkv() + h * (d.dn + d.dv);
      const float* kr = act.k_rope.data() + b * T * d.dr;
      float* P = act.probs.data() + i * T * T;
      sgemm(false, true, T, T, d.dn, sigma, q, d.ldq(), kv, d.ldkv(), 0.0f, P, T);
      sgemm(false, true, T, T, d.dr, sigma, q + d.dn, d.ldq(), kr, d.dr, 1.0f, P, T);
      for (int64_t t = 0; t < T; ++t) {
        float* row = P + t * T;
        const float mx = *std::max_element(row, row + t + 1);
        double sum = 0.0;
        for (int64_t s = 0; s <= t; ++s) {
          row[s] = std::exp(row[s] - mx);
          sum += row[s];
        }
        const float inv = static_cast<float>(1.0 / sum);
        for (int64_t s = 0; s <= t; ++s) row[s] *= inv;
        std::fill(row + t + 1, row + T, 0.0f);
      }
      sgemm(false, false, T, d.dv, T, 1.0f, P, T, kv + d.dn, d.ldkv(), 0.0f,
                  act.o.data() + b * T * d.ldo() + h * d.dv, d.ldo());
    }
  });
}

// The backward of attention_core_forward: dq [N, ldq], dkv [N, ldkv] and dk_rope [N, dr] from dO [N, ldo].
void attention_core_backward(ThreadPool& pool, const Dims& d, int64_t B, int64_t T, float sigma,
                             const MlaActivations& act, const float* dO, float* dq, float* dkv, float* dk_rope) {
  // The rope key is shared by all heads: each head writes its own part, summed afterwards.
  std::vector<float> dk_rope_heads(static_cast<size_t>(B * d.H * T * d.dr));
  pool.parallel_for(B * d.H, [&](int64_t i0, int64_t i1) {
    std::vector<float> dP(static_cast<size_t>(T * T));
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / d.H, h = i % d.H;
      const float* q = act.q.data() + b * T * d.ldq() + h * d.dqk;
      const float* kv = act.kv.data() + b * T * d.ldkv() + h * (d.dn + d.dv);
      const float* kr = act.k_rope.data() + b * T * d.dr;
      const float* P = act.probs.data() + i * T * T;
      const float* dOh = dO + b * T * d.ldo() + h * d.dv;
      float* dqh = dq + b * T * d.ldq() + h * d.dqk;
      float* dkvh = dkv + b * T * d.ldkv() + h * (d.dn + d.dv);
      // dP = dO·Vᵀ, dV = Pᵀ·dO
      sgemm(false, true, T, T, d.dv, 1.0f, dOh, d.ldo(), kv + d.dn, d.ldkv(), 0.0f,
                  dP.data(), T);
      sgemm(true, false, T, d.dv, T, 1.0f, P, T, dOh, d.ldo(), 0.0f, dkvh + d.dn,
                  d.ldkv());
      // dS = σ·P ⊙ (dP − Σ_s P·dP), in place in dP
      for (int64_t t = 0; t < T; ++t) {
        const float* p = P + t * T;
        float* g = dP.data() + t * T;
        double dot = 0.0;
        for (int64_t s = 0; s <= t; ++s) dot += static_cast<double>(p[s]) * g[s];
        for (int64_t s = 0; s <= t; ++s) g[s] = sigma * p[s] * static_cast<float>(g[s] - dot);
        std::fill(g + t + 1, g + T, 0.0f);
      }
      const float* dS = dP.data();
      sgemm(false, false, T, d.dn, T, 1.0f, dS, T, kv, d.ldkv(), 0.0f, dqh, d.ldq());
      sgemm(false, false, T, d.dr, T, 1.0f, dS, T, kr, d.dr, 0.0f, dqh + d.dn,
                  d.ldq());
      sgemm(true, false, T, d.dn, T, 1.0f, dS, T, q, d.ldq(), 0.0f, dkvh, d.ldkv());
      sgemm(true, false, T, d.dr, T, 1.0f, dS, T, q + d.dn, d.ldq(), 0.0f,
                  dk_rope_heads.data() + i * T * d.dr, d.dr);
    }
  });
  for (int64_t b = 0; b < B; ++b) {
    float* out = dk_rope + b * T * d.dr;
    std::fill(out, out + T * d.dr, 0.0f);
    for (int64_t h = 0; h < d.H; ++h) {
      const float* part = dk_rope_heads.data() + (b * d.H + h) * T * d.dr;
      for (int64_t j = 0; j < T * d.dr; ++j) out[j] += part[j];
    }
  }
}

}  // namespace

void mla_forward(ThreadPool& pool, const TAttention& w, const ModelConfig& c, const RopeTable& rope, const float* x,
                 int64_t B, int64_t T, MlaActivations& act, float* out) {
  const Dims d = dims_of(c);
  const int64_t N = B * T;
  const float eps = static_cast<float>(c.rms_norm_eps);
  resize_buffer(act.q, N * d.ldq());
  if (w.q_proj) {
    linear_forward(&pool, x, w.q_proj->w, act.q.data(), N, d.D, d.ldq());
  } else {
    resize_buffer(act.cq, N * d.rq);
    resize_buffer(act.cq_rstd, N);
    resize_buffer(act.cqn, N * d.rq);
    linear_forward(&pool, x, w.q_a_proj->w, act.cq.data(), N, d.D, d.rq);
    rmsnorm_forward(&pool, act.cq.data(), d.rq, w.q_a_norm->w, N, d.rq, eps, act.cqn.data(), d.rq, act.cq_rstd.data());
    linear_forward(&pool, act.cqn.data(), w.q_b_proj->w, act.q.data(), N, d.rq, d.ldq());
  }
  for (int64_t h = 0; h < d.H; ++h) rope_rotate(act.q.data() + h * d.dqk + d.dn, d.ldq(), N, T, rope, false);

  const int64_t la = d.r + d.dr;
  resize_buffer(act.a, N * la);
  resize_buffer(act.ckv, N * d.r);
  resize_buffer(act.kv_rstd, N);
  resize_buffer(act.k_rope, N * d.dr);
  linear_forward(&pool, x, w.kv_a_proj.w, act.a.data(), N, d.D, la);
  rmsnorm_forward(&pool, act.a.data(), la, w.kv_a_norm.w, N, d.r, eps, act.ckv.data(), d.r, act.kv_rstd.data());
  for (int64_t n = 0; n < N; ++n)
    std::copy(act.a.data() + n * la + d.r, act.a.data() + (n + 1) * la, act.k_rope.data() + n * d.dr);
  rope_rotate(act.k_rope.data(), d.dr, N, T, rope, false);

  resize_buffer(act.kv, N * d.ldkv());
  linear_forward(&pool, act.ckv.data(), w.kv_b_proj.w, act.kv.data(), N, d.r, d.ldkv());
  resize_buffer(act.probs, B * d.H * T * T);
  resize_buffer(act.o, N * d.ldo());
  attention_core_forward(pool, d, B, T, static_cast<float>(c.softmax_scale()), act);
  linear_forward(&pool, act.o.data(), w.o_proj.w, out, N, d.ldo(), d.D);
}

void mla_backward(ThreadPool& pool, const TAttention& w, const ModelConfig& c, const RopeTable& rope, const float* x,
                  int64_t B, int64_t T, const MlaActivations& act, const float* dout, float* dx) {
  const Dims d = dims_of(c);
  const int64_t N = B * T;
  std::vector<float> dO(static_cast<size_t>(N * d.ldo()));
  linear_backward(&pool, act.o.data(), w.o_proj.w, dout, dO.data(), w.o_proj.g, N, d.ldo(), d.D);

  std::vector<float> dq(static_cast<size_t>(N * d.ldq())), dkv(static_cast<size_t>(N * d.ldkv())),
      dk_rope(static_cast<size_t>(N * d.dr));
  attention_core_backward(pool, d, B, T, static_cast<float>(c.softmax_scale()), act, dO.data(), dq.data(), dkv.data(),
                          dk_rope.data());

  // Latent path: kv = kv_b · ckv; ckv = rmsnorm(a[:, :r]); k_rope = rope(a[:, r:]).
  const int64_t la = d.r + d.dr;
  std::vector<float> dckv(static_cast<size_t>(N * d.r)), da(static_cast<size_t>(N * la));
  linear_backward(&pool, act.ckv.data(), w.kv_b_proj.w, dkv.data(), dckv.data(), w.kv_b_proj.g, N, d.r, d.ldkv());
  rmsnorm_backward(&pool, act.a.data(), la, w.kv_a_norm.w, act.kv_rstd.data(), dckv.data(), d.r, N, d.r, da.data(), la,
                   w.kv_a_norm.g);
  rope_rotate(dk_rope.data(), d.dr, N, T, rope, true);
  for (int64_t n = 0; n < N; ++n)
    std::copy(dk_rope.data() + n * d.dr, dk_rope.data() + (n + 1) * d.dr, da.data() + n * la + d.r);
  linear_backward(&pool, x, w.kv_a_proj.w, da.data(), dx, w.kv_a_proj.g, N, d.D, la);

  // Query path (dx accumulates onto the latent path's part).
  for (int64_t h = 0; h < d.H; ++h) rope_rotate(dq.data() + h * d.dqk + d.dn, d.ldq(), N, T, rope, true);
  if (w.q_proj) {
    linear_backward(&pool, x, w.q_proj->w, dq.data(), dx, w.q_proj->g, N, d.D, d.ldq(), true);
  } else {
    std::vector<float> dcqn(static_cast<size_t>(N * d.rq)), dcq(static_cast<size_t>(N * d.rq));
    linear_backward(&pool, act.cqn.data(), w.q_b_proj->w, dq.data(), dcqn.data(), w.q_b_proj->g, N, d.rq, d.ldq());
    rmsnorm_backward(&pool, act.cq.data(), d.rq, w.q_a_norm->w, act.cq_rstd.data(), dcqn.data(), d.rq, N, d.rq,
                     dcq.data(), d.rq, w.q_a_norm->g);
    linear_backward(&pool, x, w.q_a_proj->w, dcq.data(), dx, w.q_a_proj->g, N, d.D, d.rq, true);
  }
}

}  // namespace whale::train
