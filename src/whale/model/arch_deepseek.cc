// The DeepSeek V2/V3 decoder: embed → layers of (MLA, dense or MoE FFN), pre-norm residual → norm → LM head
// (deepseek-spec §2.1). The MTP layer is loaded but not part of this pass.
#include <algorithm>

#include "whale/core/error.h"
#include "whale/core/uninit_vector.h"
#include "whale/kernels/matmul.h"
#include "whale/kernels/norm.h"
#include "whale/kernels/rope.h"
#include "whale/model/ffn.h"
#include "whale/model/model.h"

namespace whale {

namespace {

// out[t] = rmsnorm(x[t]) for T rows of D, over the pool for a batch (each row is computed alone, so the split changes
// no bit): a 16-token step's norms cost ~2.5 ms serial on one thread.
void rmsnorm_rows(const float* x, const float* w, int T, int D, float eps, float* out, ThreadPool& pool) {
  constexpr int kRowsPerSlice = 4;
  pool.parallel_for(
      T,
      [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t)
          rmsnorm(x + static_cast<size_t>(t) * D, w, D, eps, out + static_cast<size_t>(t) * D);
      },
      kRowsPerSlice);
}

// The reading's bytes as MiB for a LoadProgress.
Checkpoint::ReadProgress read_progress_in_mib(const LoadProgress& progress) {
  if (!progress) return nullptr;
  return [progress](uint64_t done, uint64_t total) {
    progress(static_cast<int>(done >> 20), static_cast<int>(std::max<uint64_t>(1, total >> 20)));
  };
}

}  // namespace

Activations parse_activations(const std::string& name) {
  if (name == "f32") return Activations::F32;
  if (name == "bf16") return Activations::Bf16;
  fail("--activations: unknown value \"{}\" (expected f32 or bf16)", name);
}

Model::Model(const std::filesystem::path& dir, const LoadProgress& progress, FileLoad load, Activations activations)
    : config_(load_model_config(dir)),
      checkpoint_(dir, load, read_progress_in_mib(progress)),
      weights_(load_model_weights(checkpoint_, config_, progress)),
      rope_inv_freq_(rope_inverse_frequencies(config_.qk_rope_head_dim, config_.rope_theta, config_.rope_scaling)),
      router_(make_router(config_.topk_method)) {
  if (activations == Activations::Bf16) use_bf16_activations(weights_);
}

LatentKvCache Model::make_cache(int capacity, int page_tokens) const {
  return LatentKvCache(config_.num_hidden_layers, config_.kv_lora_rank, config_.qk_rope_head_dim, capacity,
                       page_tokens);
}

std::vector<float> Model::forward(std::span<const int32_t> tokens, LatentKvCache& cache, ThreadPool& pool,
                                  AttentionForm form, LogitRows rows, StepPhases* phases) const {
  const SequenceStep step{tokens, &cache, rows};
  return std::move(forward_batch(std::span(&step, 1), pool, form, phases)[0]);
}

std::vector<std::vector<float>> Model::forward_batch(std::span<const SequenceStep> steps, ThreadPool& pool,
                                                     AttentionForm form, StepPhases* phases) const {
  const ModelConfig& c = config_;
  const int D = c.hidden_size;
  std::vector<AttentionSegment> segments;
  std::vector<int32_t> tokens;
  for (size_t i = 0; i < steps.size(); ++i) {
    const SequenceStep& s = steps[i];
    const int n = static_cast<int>(s.tokens.size()), pos0 = s.cache->size();
    if (pos0 + n > s.cache->capacity())
      fail("{} tokens at position {} exceed the context of {} tokens", n, pos0, s.cache->capacity());
    for (int t = 0; t < n; ++t)
      if (s.tokens[t] < 0 || s.tokens[t] >= c.vocab_size)
        fail("token id {} at index {} is out of range for vocab_size {}", s.tokens[t], t, c.vocab_size);
    for (size_t k = 0; k < i; ++k)
      if (steps[k].cache == s.cache) fail("steps {} and {} of a batch share one latent cache", k, i);
    s.cache->reserve(pos0 + n);
    segments.push_back({s.cache, pos0, n});
    tokens.insert(tokens.end(), s.tokens.begin(), s.tokens.end());
  }
  const int T = static_cast<int>(tokens.size());
  std::vector<std::vector<float>> logits(steps.size());
  if (T == 0) return logits;

  const float eps = static_cast<float>(c.rms_norm_eps);
  std::vector<float> x(static_cast<size_t>(T) * D), h(x.size()), y(x.size());
  const Weight2D embed = weights_.embed_tokens.view();
  for (int t = 0; t < T; ++t) decode_rows(embed, tokens[t], tokens[t] + 1, x.data() + static_cast<size_t>(t) * D);

  if (phases) ++phases->steps;
  const MlaContext mla{c, rope_inv_freq_, form, pool, phases};
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& lw = weights_.layers[l];
    PhaseTimer phase(phases, StepPhase::Norms);
    rmsnorm_rows(x.data(), lw.input_layernorm.data(), T, D, eps, h.data(), pool);
    phase.stop();
    mla_forward(mla, lw.self_attn, l, segments, h.data(), y.data());
    phase.start(StepPhase::Norms);
    for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];

    rmsnorm_rows(x.data(), lw.post_attention_layernorm.data(), T, D, eps, h.data(), pool);
    phase.stop();
    if (lw.moe) moe_forward(c, *lw.moe, router_, h.data(), T, y.data(), pool, phases);
    else mlp_forward(*lw.mlp, h.data(), T, y.data(), pool, phases);
    phase.start(StepPhase::Norms);
    for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
  }
  for (const AttentionSegment& s : segments) s.cache->commit(s.pos0 + s.n_tokens);

  // The LM head once for every row any step wants: all of a step's rows, its last, or none.
  std::vector<int> head_rows;
  std::vector<size_t> wanted(steps.size());
  int t0 = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    const int n = static_cast<int>(steps[i].tokens.size());
    const LogitRows rows = steps[i].rows;
    const int first = n == 0 || rows == LogitRows::None ? n : rows == LogitRows::Last ? n - 1 : 0;
    wanted[i] = static_cast<size_t>(n - first);
    for (int t = first; t < n; ++t) head_rows.push_back(t0 + t);
    t0 += n;
  }
  const int R = static_cast<int>(head_rows.size());
  const PhaseTimer phase(phases, StepPhase::LmHead,
                         [&] { return R > 0 ? weight_bytes(weights_.lm_head.view()) : int64_t{0}; });
  for (int r = 0; r < R; ++r)
    rmsnorm(x.data() + static_cast<size_t>(head_rows[r]) * D, weights_.norm.data(), D, eps,
            h.data() + static_cast<size_t>(r) * D);
  UninitVector<float> all(static_cast<size_t>(R) * c.vocab_size);  // written in full by the product
  if (R > 0) matmul(weights_.lm_head.view(), h.data(), R, all.data(), pool);
  auto at = all.begin();
  for (size_t i = 0; i < steps.size(); ++i) {
    const auto end = at + static_cast<std::ptrdiff_t>(wanted[i] * c.vocab_size);
    logits[i].assign(at, end);
    at = end;
  }
  return logits;
}

}  // namespace whale
