// The DeepSeek V2/V3 decoder: embed → layers of (MLA, dense or MoE FFN), pre-norm residual → norm → LM head
// (deepseek-spec §2.1). The MTP layer is loaded but not part of this pass.
#include <algorithm>

#include "whale/core/error.h"
#include "whale/kernels/matmul.h"
#include "whale/kernels/norm.h"
#include "whale/kernels/rope.h"
#include "whale/model/ffn.h"
#include "whale/model/model.h"

namespace whale {

Model::Model(const std::filesystem::path& dir, const LoadProgress& progress)
    : config_(load_model_config(dir)),
      checkpoint_(dir),
      weights_(load_model_weights(checkpoint_, config_, progress)),
      rope_inv_freq_(rope_inverse_frequencies(config_.qk_rope_head_dim, config_.rope_theta, config_.rope_scaling)),
      router_(make_router(config_.topk_method)) {}

LatentKvCache Model::make_cache(int capacity) const {
  return LatentKvCache(config_.num_hidden_layers, config_.kv_lora_rank, config_.qk_rope_head_dim, capacity);
}

std::vector<float> Model::forward(std::span<const int32_t> tokens, LatentKvCache& cache, ThreadPool& pool,
                                  AttentionForm form, LogitRows rows) const {
  const ModelConfig& c = config_;
  const int T = static_cast<int>(tokens.size()), D = c.hidden_size, pos0 = cache.size();
  if (T == 0) return {};
  if (pos0 + T > cache.capacity())
    fail("{} tokens at position {} exceed the context of {} tokens", T, pos0, cache.capacity());
  for (int t = 0; t < T; ++t)
    if (tokens[t] < 0 || tokens[t] >= c.vocab_size)
      fail("token id {} at index {} is out of range for vocab_size {}", tokens[t], t, c.vocab_size);

  const float eps = static_cast<float>(c.rms_norm_eps);
  std::vector<float> x(static_cast<size_t>(T) * D), h(x.size()), y(x.size());
  const Weight2D embed = weights_.embed_tokens.view();
  for (int t = 0; t < T; ++t) decode_rows(embed, tokens[t], tokens[t] + 1, x.data() + static_cast<size_t>(t) * D);

  const MlaContext mla{c, rope_inv_freq_, form, pool};
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& lw = weights_.layers[l];
    for (int t = 0; t < T; ++t)
      rmsnorm(x.data() + static_cast<size_t>(t) * D, lw.input_layernorm.data(), D, eps, h.data() + static_cast<size_t>(t) * D);
    mla_forward(mla, lw.self_attn, l, cache, pos0, h.data(), T, y.data());
    for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];

    for (int t = 0; t < T; ++t)
      rmsnorm(x.data() + static_cast<size_t>(t) * D, lw.post_attention_layernorm.data(), D, eps,
              h.data() + static_cast<size_t>(t) * D);
    if (lw.moe) moe_forward(c, *lw.moe, router_, h.data(), T, y.data(), pool);
    else mlp_forward(*lw.mlp, h.data(), T, y.data(), pool);
    for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
  }
  cache.commit(pos0 + T);

  const int first = rows == LogitRows::Last ? T - 1 : 0;
  for (int t = first; t < T; ++t)
    rmsnorm(x.data() + static_cast<size_t>(t) * D, weights_.norm.data(), D, eps, h.data() + static_cast<size_t>(t) * D);
  std::vector<float> logits(static_cast<size_t>(T - first) * c.vocab_size);
  matmul(weights_.lm_head.view(), h.data() + static_cast<size_t>(first) * D, T - first, logits.data(), pool);
  return logits;
}

}  // namespace whale
