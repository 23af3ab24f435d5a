// Arithmetic of one training token, for tokens/s → FLOP/s and MFU (model FLOPs utilisation).
#pragma once

#include <cstdint>

#include "whale/model/config.h"

namespace whale::train {

// FLOPs of forward + backward for one token in windows of T: 3 × the forward's, which counts 2 per multiply-add of
// every product the token takes part in (its routed experts only) and, per layer, 2·T·heads·(qk_head_dim + v_head_dim)
// for attention scores and values over the whole window (PaLM's convention, no causal saving). With mtp, the MTP
// module's projection, layer and LM head over T − 1 of the T positions.
double training_flops_per_token(const ModelConfig& c, int64_t T, bool mtp);

}  // namespace whale::train
