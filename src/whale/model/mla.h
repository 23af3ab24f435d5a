// Multi-head Latent Attention over the latent cache (deepseek-spec §2.4, §2.7).
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "whale/core/thread_pool.h"
#include "whale/model/config.h"
#include "whale/model/latent_kv_cache.h"
#include "whale/model/step_phases.h"
#include "whale/model/weights.h"

namespace whale {

// Absorbed: queries are folded through W_UK and attend over the 576-value latents directly (the reference's
// default). Naive: per-head keys and values are expanded from the cached latents, then standard attention.
// Both read the same latent cache and agree up to rounding. For a long chunk of queries (64 or more, a prompt)
// Absorbed computes the expanded form with matrix products, which needs fewer operations there; decode stays absorbed.
enum class AttentionForm { Absorbed, Naive };

// Parses "absorbed" or "naive"; throws Error otherwise.
AttentionForm parse_attention_form(std::string_view name);

struct MlaContext {
  const ModelConfig& config;
  const std::vector<double>& rope_inv_freq;
  AttentionForm form;
  ThreadPool& pool;
  StepPhases* phases = nullptr;  // where to add each phase's time (whale bench --phases); null: none
};

// out[T, hidden] = MLA(x[T, hidden]) for tokens at positions pos0 .. pos0+T-1 of layer `layer`, causal over all
// cached tokens. Writes the tokens' latent entries into the cache (rows pos0 .. pos0+T-1); does not commit them.
void mla_forward(const MlaContext& ctx, const AttentionWeights& w, int layer, LatentKvCache& cache, int pos0,
                 const float* x, int n_tokens, float* out);

// One sequence's part of a batch: its own cache, the position of its first new token, how many new tokens.
struct AttentionSegment {
  LatentKvCache* cache;
  int pos0;
  int n_tokens;
};

// The same for several sequences at once (continuous batching): x and out hold the segments' tokens one after the
// other (T = Σ n_tokens rows). The projections run once over all T rows (one pass over the weights); rope, the cache
// writes and attention run per segment against its own cache. Each sequence gets exactly what mla_forward gives it
// alone wherever the projections' results do not depend on the batch size (every format but BF16 prompts on AMX).
// The caches must be distinct.
void mla_forward(const MlaContext& ctx, const AttentionWeights& w, int layer,
                 std::span<const AttentionSegment> segments, const float* x, float* out);

}  // namespace whale
