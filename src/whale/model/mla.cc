#include "whale/model/mla.h"

#include <algorithm>
#include <cstring>

#include "whale/core/error.h"
#include "whale/kernels/activations.h"
#include "whale/kernels/matmul.h"
#include "whale/kernels/norm.h"
#include "whale/kernels/rope.h"

namespace whale {

AttentionForm parse_attention_form(std::string_view name) {
  if (name == "absorbed") return AttentionForm::Absorbed;
  if (name == "naive") return AttentionForm::Naive;
  fail("unknown attention form \"{}\" (expected \"absorbed\" or \"naive\")", name);
}

namespace {

struct HeadDims {
  int dn, dr, dv, dqk, rank;
};

// o[dv] for one query of head h, absorbed form: scores against latents, then W_UV on the latent mix.
void attend_absorbed(const HeadDims& d, const float* w_head, const float* q_nope, const float* q_rope,
                     const LatentKvCache& cache, int layer, int n_ctx, float scale, float* o, std::vector<float>& buf) {
  buf.assign(d.rank + d.rank + n_ctx, 0.0f);
  float* q_latent = buf.data();          // W_UKᵀ · q_nope
  float* mixed = q_latent + d.rank;      // Σ α_t c_t
  float* scores = mixed + d.rank;
  for (int j = 0; j < d.dn; ++j) {
    const float qj = q_nope[j];
    const float* wj = w_head + static_cast<size_t>(j) * d.rank;
    for (int c = 0; c < d.rank; ++c) q_latent[c] += wj[c] * qj;
  }
  for (int t = 0; t < n_ctx; ++t) {
    const float* row = cache.row(layer, t);
    scores[t] = scale * (dot(q_latent, row, d.rank) + dot(q_rope, row + d.rank, d.dr));
  }
  softmax_inplace(scores, n_ctx);
  for (int t = 0; t < n_ctx; ++t) {
    const float* row = cache.row(layer, t);
    const float a = scores[t];
    for (int c = 0; c < d.rank; ++c) mixed[c] += a * row[c];
  }
  for (int i = 0; i < d.dv; ++i) o[i] = dot(w_head + static_cast<size_t>(d.dn + i) * d.rank, mixed, d.rank);
}

}  // namespace

void mla_forward(const MlaContext& ctx, const AttentionWeights& w, int layer, LatentKvCache& cache, int pos0,
                 const float* x, int n_tokens, float* out) {
  const ModelConfig& c = ctx.config;
  const HeadDims d{c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim, c.qk_head_dim(), c.kv_lora_rank};
  const int heads = c.num_attention_heads, T = n_tokens;
  const float eps = static_cast<float>(c.rms_norm_eps);
  ThreadPool& pool = ctx.pool;

  // Queries [T, heads·dqk] (through q_lora when the model has it), and the latents with the shared rope key: the
  // projections that read x go in one pass.
  std::vector<float> q(static_cast<size_t>(T) * heads * d.dqk);
  std::vector<float> kva(static_cast<size_t>(T) * cache.row_size());
  std::vector<float> qa;
  if (w.q_proj) {
    const MatmulJob jobs[] = {{w.q_proj->view(), x, T, q.data()}, {w.kv_a_proj_with_mqa.view(), x, T, kva.data()}};
    matmul_batch(jobs, pool);
  } else {
    qa.resize(static_cast<size_t>(T) * c.q_lora_rank);
    const MatmulJob jobs[] = {{w.q_a_proj->view(), x, T, qa.data()}, {w.kv_a_proj_with_mqa.view(), x, T, kva.data()}};
    matmul_batch(jobs, pool);
    for (int t = 0; t < T; ++t) {
      float* row = qa.data() + static_cast<size_t>(t) * c.q_lora_rank;
      rmsnorm(row, w.q_a_layernorm.data(), c.q_lora_rank, eps, row);
    }
    matmul(w.q_b_proj->view(), qa.data(), T, q.data(), pool);
  }
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < heads; ++h)
      rope_interleaved(q.data() + (static_cast<size_t>(t) * heads + h) * d.dqk + d.dn, ctx.rope_inv_freq, pos0 + t);

  for (int t = 0; t < T; ++t) {
    const float* src = kva.data() + static_cast<size_t>(t) * cache.row_size();
    float* row = cache.row(layer, pos0 + t);
    rmsnorm(src, w.kv_a_layernorm.data(), d.rank, eps, row);
    std::memcpy(row + d.rank, src + d.rank, sizeof(float) * d.dr);
    rope_interleaved(row + d.rank, ctx.rope_inv_freq, pos0 + t);
  }

  const float scale = static_cast<float>(c.softmax_scale());
  const int rows_per_head = d.dn + d.dv;
  std::vector<float> o(static_cast<size_t>(T) * heads * d.dv);
  const Weight2D kv_b = w.kv_b_proj.view();
  pool.parallel_for(heads, [&](int64_t h0, int64_t h1) {
    std::vector<float> w_head(static_cast<size_t>(rows_per_head) * d.rank);
    std::vector<float> buf;
    std::vector<float> keys, values;
    for (int64_t h = h0; h < h1; ++h) {
      decode_rows(kv_b, h * rows_per_head, (h + 1) * rows_per_head, w_head.data());
      if (ctx.form == AttentionForm::Naive) {
        // Expand k_nope and v of every cached token for this head.
        const int n_ctx = pos0 + T;
        keys.resize(static_cast<size_t>(n_ctx) * d.dn);
        values.resize(static_cast<size_t>(n_ctx) * d.dv);
        for (int s = 0; s < n_ctx; ++s) {
          const float* latent = cache.row(layer, s);
          for (int j = 0; j < d.dn; ++j) keys[s * d.dn + j] = dot(w_head.data() + j * d.rank, latent, d.rank);
          for (int i = 0; i < d.dv; ++i)
            values[s * d.dv + i] = dot(w_head.data() + (d.dn + i) * d.rank, latent, d.rank);
        }
        for (int t = 0; t < T; ++t) {
          const float* qh = q.data() + (static_cast<size_t>(t) * heads + h) * d.dqk;
          const int ctx_len = pos0 + t + 1;
          buf.resize(ctx_len);
          for (int s = 0; s < ctx_len; ++s)
            buf[s] = scale * (dot(qh, keys.data() + s * d.dn, d.dn) +
                              dot(qh + d.dn, cache.row(layer, s) + d.rank, d.dr));
          softmax_inplace(buf.data(), ctx_len);
          float* oh = o.data() + (static_cast<size_t>(t) * heads + h) * d.dv;
          std::fill(oh, oh + d.dv, 0.0f);
          for (int s = 0; s < ctx_len; ++s)
            for (int i = 0; i < d.dv; ++i) oh[i] += buf[s] * values[s * d.dv + i];
        }
      } else {
        for (int t = 0; t < T; ++t) {
          const float* qh = q.data() + (static_cast<size_t>(t) * heads + h) * d.dqk;
          attend_absorbed(d, w_head.data(), qh, qh + d.dn, cache, layer, pos0 + t + 1, scale,
                          o.data() + (static_cast<size_t>(t) * heads + h) * d.dv, buf);
        }
      }
    }
  });

  matmul(w.o_proj.view(), o.data(), T, out, pool);
}

}  // namespace whale
