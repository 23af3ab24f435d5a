#include "whale/train/transformer.h"

#include <algorithm>

#include "whale/core/error.h"

namespace whale::train {
namespace {

void add_into(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace

Transformer::Transformer(ParameterSet& params, ThreadPool& pool) : params_(params), pool_(pool) {
  const ModelConfig& c = params.config();
  inv_freq_ = rope_inverse_frequencies(c.qk_rope_head_dim, c.rope_theta, c.rope_scaling);
  acts_.resize(static_cast<size_t>(c.num_hidden_layers + 1));
  reset_expert_counts();
}

void Transformer::reset_expert_counts() {
  const ModelConfig& c = params_.config();
  expert_counts_.assign(static_cast<size_t>(c.num_hidden_layers + 1), {});
  for (int L = 0; L <= c.num_hidden_layers; ++L)
    if (c.is_moe_layer(L)) expert_counts_[L].assign(static_cast<size_t>(c.n_routed_experts), 0);
}

void Transformer::layer_forward(const TLayer& w, const RopeTable& rope, int64_t B, int64_t T, float alpha,
                                LayerActivations& act, float* h_out, double& balance) {
  const ModelConfig& c = params_.config();
  const int64_t N = B * T, D = c.hidden_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  resize_buffer(act.x_attn, N * D);
  resize_buffer(act.r_attn, N);
  rmsnorm_forward(&pool_, act.h_in.data(), D, w.input_norm.w, N, D, eps, act.x_attn.data(), D, act.r_attn.data());
  resize_buffer(act.h_mid, N * D);
  mla_forward(pool_, w.attn, c, rope, act.x_attn.data(), B, T, act.attn, act.h_mid.data());
  add_into(act.h_mid.data(), act.h_in.data(), N * D);

  resize_buffer(act.x_ffn, N * D);
  resize_buffer(act.r_ffn, N);
  rmsnorm_forward(&pool_, act.h_mid.data(), D, w.post_attention_norm.w, N, D, eps, act.x_ffn.data(), D,
                  act.r_ffn.data());
  if (w.moe) {
    balance += moe_forward(pool_, *w.moe, c, act.x_ffn.data(), B, T, alpha, act.moe, h_out);
    std::vector<int64_t>& counts = expert_counts_[w.index];
    for (size_t e = 0; e < counts.size(); ++e) counts[e] += act.moe.counts[e];
  } else {
    mlp_forward(&pool_, *w.mlp, act.x_ffn.data(), N, act.mlp, h_out);
  }
  add_into(h_out, act.h_mid.data(), N * D);
}

void Transformer::layer_backward(const TLayer& w, const RopeTable& rope, int64_t B, int64_t T, float alpha,
                                 const LayerActivations& act, std::vector<float>& dh) {
  const ModelConfig& c = params_.config();
  const int64_t N = B * T, D = c.hidden_size;
  // FFN branch: dh stays as the residual's gradient, dx_ffn flows back through the norm into it.
  std::vector<float> dx(static_cast<size_t>(N * D));
  if (w.moe) moe_backward(pool_, *w.moe, c, act.x_ffn.data(), B, T, alpha, act.moe, dh.data(), dx.data());
  else mlp_backward(&pool_, *w.mlp, act.x_ffn.data(), N, act.mlp, dh.data(), dx.data());
  rmsnorm_backward(&pool_, act.h_mid.data(), D, w.post_attention_norm.w, act.r_ffn.data(), dx.data(), D, N, D,
                   dh.data(), D, w.post_attention_norm.g, true);
  // Attention branch.
  mla_backward(pool_, w.attn, c, rope, act.x_attn.data(), B, T, act.attn, dh.data(), dx.data());
  rmsnorm_backward(&pool_, act.h_in.data(), D, w.input_norm.w, act.r_attn.data(), dx.data(), D, N, D, dh.data(), D,
                   w.input_norm.g, true);
}

BatchLoss Transformer::run(std::span<const int32_t> windows, int64_t B, int64_t T, const LossWeights& lw,
                           bool backward, float grad_scale) {
  return pass(windows, B, T, lw, backward, grad_scale, {}, nullptr);
}

BatchLoss Transformer::run_objective(std::span<const int32_t> windows, int64_t B, int64_t T,
                                     std::span<const uint8_t> scored, const TokenObjective& objective,
                                     const LossWeights& lw, bool backward, float grad_scale) {
  if (static_cast<int64_t>(scored.size()) != B * T) fail("batch: {} scored flags for {} positions", scored.size(), B * T);
  LossWeights no_mtp = lw;
  no_mtp.mtp = 0.0f;
  return pass(windows, B, T, no_mtp, backward, grad_scale, scored, &objective);
}

BatchLoss Transformer::pass(std::span<const int32_t> windows, int64_t B, int64_t T, const LossWeights& lw,
                            bool backward, float grad_scale, std::span<const uint8_t> scored,
                            const TokenObjective* objective) {
  const ModelConfig& c = params_.config();
  const TModel& m = params_.model();
  const int64_t N = B * T, D = c.hidden_size, V = c.vocab_size, W = T + 1;
  const float eps = static_cast<float>(c.rms_norm_eps);
  if (static_cast<int64_t>(windows.size()) != B * W) fail("batch: {} ids for {} windows of {}", windows.size(), B, W);
  for (int32_t id : windows)
    if (id < 0 || id >= V) fail("token id {} is outside the vocabulary [0, {})", id, V);
  const bool with_mtp = m.mtp && lw.mtp > 0.0f && T >= 2;
  const RopeTable rope = make_rope_table(inv_freq_, T);  // the MTP layer's T − 1 positions are its first rows
  BatchLoss loss;

  // Embedding and decoder layers.
  std::vector<int32_t> inputs(static_cast<size_t>(N)), targets(static_cast<size_t>(N));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      inputs[b * T + t] = windows[b * W + t];
      targets[b * T + t] = objective && !scored[b * T + t] ? -1 : windows[b * W + t + 1];
    }
  std::vector<float> h(static_cast<size_t>(N * D));
  for (int64_t n = 0; n < N; ++n) std::copy_n(m.embed.w + inputs[n] * D, D, h.data() + n * D);
  for (const TLayer& layer : m.layers) {
    LayerActivations& act = acts_[layer.index];
    act.h_in = h;
    layer_forward(layer, rope, B, T, lw.balance, act, h.data(), loss.balance);
  }
  std::vector<float> hn(static_cast<size_t>(N * D)), r_final(static_cast<size_t>(N));
  rmsnorm_forward(&pool_, h.data(), D, m.final_norm.w, N, D, eps, hn.data(), D, r_final.data());

  // Main head: logits become their gradient in place.
  std::vector<float> logits(static_cast<size_t>(N * V));
  linear_forward(&pool_, hn.data(), m.lm_head.w, logits.data(), N, D, V);
  if (objective) {
    loss.main = scored_log_probs(&pool_, logits.data(), targets.data(), N, V, *objective, backward, grad_scale);
    loss.main_tokens = std::count_if(targets.begin(), targets.end(), [](int32_t t) { return t >= 0; });
  } else {
    loss.main = cross_entropy(&pool_, logits.data(), targets.data(), N, V, grad_scale / static_cast<float>(N),
                              &loss.main_correct) / N;
    loss.main_tokens = N;
  }

  // MTP module over positions 0..T-2 of each window: u_t = eh_proj · [enorm(embed(id_{t+1})); hnorm(hn_t)].
  const int64_t Tm = T - 1, Nm = B * Tm;
  std::vector<float> emb, en, r_en, hh, r_hh, cat, z, zn, r_zn, mtp_logits;
  std::vector<int32_t> mtp_next, mtp_targets;
  if (with_mtp) {
    const TMtp& mt = *m.mtp;
    mtp_next.resize(static_cast<size_t>(Nm));
    mtp_targets.resize(static_cast<size_t>(Nm));
    resize_buffer(emb, Nm * D);
    resize_buffer(hh, Nm * D);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < Tm; ++t) {
        const int64_t r = b * Tm + t;
        mtp_next[r] = windows[b * W + t + 1];
        mtp_targets[r] = windows[b * W + t + 2];
        std::copy_n(m.embed.w + mtp_next[r] * D, D, emb.data() + r * D);
        std::copy_n(hn.data() + (b * T + t) * D, D, hh.data() + r * D);  // hnorm's input, normalized below
      }
    resize_buffer(cat, Nm * 2 * D);
    resize_buffer(r_en, Nm);
    resize_buffer(r_hh, Nm);
    rmsnorm_forward(&pool_, emb.data(), D, mt.enorm.w, Nm, D, eps, cat.data(), 2 * D, r_en.data());
    rmsnorm_forward(&pool_, hh.data(), D, mt.hnorm.w, Nm, D, eps, cat.data() + D, 2 * D, r_hh.data());
    LayerActivations& act = acts_[c.num_hidden_layers];
    resize_buffer(act.h_in, Nm * D);
    linear_forward(&pool_, cat.data(), mt.eh_proj.w, act.h_in.data(), Nm, 2 * D, D);
    resize_buffer(z, Nm * D);
    layer_forward(mt.layer, rope, B, Tm, lw.balance, act, z.data(), loss.balance);
    resize_buffer(zn, Nm * D);
    resize_buffer(r_zn, Nm);
    rmsnorm_forward(&pool_, z.data(), D, mt.head_norm.w, Nm, D, eps, zn.data(), D, r_zn.data());
    resize_buffer(mtp_logits, Nm * V);
    linear_forward(&pool_, zn.data(), m.lm_head.w, mtp_logits.data(), Nm, D, V);
    loss.mtp = cross_entropy(&pool_, mtp_logits.data(), mtp_targets.data(), Nm, V,
                             grad_scale * lw.mtp / static_cast<float>(Nm), &loss.mtp_correct) / Nm;
    loss.mtp_tokens = Nm;
  }
  loss.total = loss.main + (with_mtp ? lw.mtp * loss.mtp : 0.0) + loss.balance;
  if (!backward) return loss;

  const float alpha_grad = lw.balance * grad_scale;
  std::vector<float> dhn(static_cast<size_t>(N * D));
  linear_backward(&pool_, hn.data(), m.lm_head.w, logits.data(), dhn.data(), m.lm_head.g, N, D, V);
  if (with_mtp) {
    const TMtp& mt = *m.mtp;
    std::vector<float> dzn(static_cast<size_t>(Nm * D)), dz(static_cast<size_t>(Nm * D));
    linear_backward(&pool_, zn.data(), m.lm_head.w, mtp_logits.data(), dzn.data(), m.lm_head.g, Nm, D, V);
    rmsnorm_backward(&pool_, z.data(), D, mt.head_norm.w, r_zn.data(), dzn.data(), D, Nm, D, dz.data(), D,
                     mt.head_norm.g);
    LayerActivations& act = acts_[c.num_hidden_layers];
    layer_backward(mt.layer, rope, B, Tm, alpha_grad, act, dz);
    std::vector<float> dcat(static_cast<size_t>(Nm * 2 * D));
    linear_backward(&pool_, cat.data(), mt.eh_proj.w, dz.data(), dcat.data(), mt.eh_proj.g, Nm, 2 * D, D);
    std::vector<float> de(static_cast<size_t>(Nm * D)), dhh(static_cast<size_t>(Nm * D));
    rmsnorm_backward(&pool_, emb.data(), D, mt.enorm.w, r_en.data(), dcat.data(), 2 * D, Nm, D, de.data(), D,
                     mt.enorm.g);
    rmsnorm_backward(&pool_, hh.data(), D, mt.hnorm.w, r_hh.data(), dcat.data() + D, 2 * D, Nm, D, dhh.data(), D,
                     mt.hnorm.g);
    for (int64_t r = 0; r < Nm; ++r) {
      add_into(m.embed.g + mtp_next[r] * D, de.data() + r * D, D);
      add_into(dhn.data() + ((r / Tm) * T + r % Tm) * D, dhh.data() + r * D, D);
    }
  }
  std::vector<float> dh(static_cast<size_t>(N * D));
  rmsnorm_backward(&pool_, h.data(), D, m.final_norm.w, r_final.data(), dhn.data(), D, N, D, dh.data(), D,
                   m.final_norm.g);
  for (auto it = m.layers.rbegin(); it != m.layers.rend(); ++it)
    layer_backward(*it, rope, B, T, alpha_grad, acts_[it->index], dh);
  for (int64_t n = 0; n < N; ++n) add_into(m.embed.g + inputs[n] * D, dh.data() + n * D, D);
  return loss;
}

}  // namespace whale::train
