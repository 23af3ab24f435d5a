// Feed-forward blocks: the dense SwiGLU MLP and the mixture of experts (deepseek-spec §2.3, §2.8).
#pragma once

#include "whale/core/thread_pool.h"
#include "whale/model/config.h"
#include "whale/model/router.h"
#include "whale/model/step_phases.h"
#include "whale/model/weights.h"

namespace whale {

// out[T, hidden] = down · (silu(gate · x) ⊙ (up · x)) for x[T, hidden].
// `phases` (may be null) gets the time as DenseMlp.
void mlp_forward(const MlpWeights& w, const float* x, int n_tokens, float* out, ThreadPool& pool,
                 StepPhases* phases = nullptr);

// out[T, hidden] = Σ_k w_k · Expert_{e_k}(x) + SharedExperts(x), with (e_k, w_k) from `router`. Tokens are grouped
// by expert, so each expert's weights are read once per call. Each token sums its experts in ascending id order,
// so its result does not depend on which other tokens share the call.
// `phases` (may be null) gets the time of each step (StepPhase::RouterShared .. Combine).
void moe_forward(const ModelConfig& config, const MoeWeights& w, RouterFn router, const float* x, int n_tokens,
                 float* out, ThreadPool& pool, StepPhases* phases = nullptr);

}  // namespace whale
