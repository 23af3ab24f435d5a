#include "whale/model/step_phases.h"

namespace whale {

const char* step_phase_name(StepPhase phase) {
  switch (phase) {
    case StepPhase::AttentionInput: return "attention_input";
    case StepPhase::CacheWrite: return "cache_write";
    case StepPhase::Attention: return "attention";
    case StepPhase::AttentionOutput: return "attention_output";
    case StepPhase::Norms: return "norms";
    case StepPhase::RouterShared: return "router_shared";
    case StepPhase::Routing: return "routing";
    case StepPhase::Experts: return "experts";
    case StepPhase::Swiglu: return "swiglu";
    case StepPhase::Downs: return "downs";
    case StepPhase::Combine: return "combine";
    case StepPhase::DenseMlp: return "dense_mlp";
    case StepPhase::LmHead: return "lm_head";
    case StepPhase::Count: break;
  }
  return "?";
}

}  // namespace whale
