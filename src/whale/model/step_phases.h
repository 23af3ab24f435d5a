// Where a forward pass spends its time: wall time and weight bytes per phase, summed over calls, for
// `whale bench --phases`. A decode step is mostly weight passes streaming from memory; the phases show the rest
// (attention's arithmetic, the calling thread's work between passes) and each pass's rate. A null StepPhases*, the
// default everywhere, times nothing.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace whale {

enum class StepPhase : int {
  AttentionInput,   // the projections of x: q (or q_a, q_b) and kv_a, one pass
  CacheWrite,       // rope, the latent and its rope key into the cache
  Attention,        // attention over the cache, W_UK and W_UV included (kv_b's bytes)
  AttentionOutput,  // o_proj
  Norms,            // RMS norms and residual adds between the blocks
  RouterShared,     // the router's scores and the shared experts' gate and up, one pass
  Routing,          // top-k, grouping tokens by expert
  Experts,          // the routed experts' gate and up, one pass
  Swiglu,           // silu(gate)·up of the routed and shared experts
  Downs,            // the routed and shared experts' down, one pass
  Combine,          // each token's experts' outputs weighted and summed
  DenseMlp,         // the dense layers' MLP (gate, up, SwiGLU, down)
  LmHead,           // the final norm and the LM head
  Count
};

// The phase's name in `whale bench`'s JSON.
const char* step_phase_name(StepPhase phase);

struct StepPhases {
  static constexpr int kCount = static_cast<int>(StepPhase::Count);
  std::array<int64_t, kCount> ns{};     // wall time, summed
  std::array<int64_t, kCount> bytes{};  // weight bytes read, summed
  int64_t steps = 0;                    // forward calls counted
};

// Times one phase from construction to destruction (or to the next `start`), adding its weight bytes; nothing when
// the StepPhases pointer is null. `bytes` is a callable returning the phase's weight bytes, called only when timing,
// so that an untimed forward pass counts no bytes.
class PhaseTimer {
 public:
  PhaseTimer(StepPhases* phases, StepPhase phase) : phases_(phases) { start(phase); }
  template <class Bytes>
  PhaseTimer(StepPhases* phases, StepPhase phase, Bytes&& bytes) : phases_(phases) {
    start(phase, bytes);
  }
  ~PhaseTimer() { stop(); }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

  // Ends the running phase and begins `phase`.
  void start(StepPhase phase) {
    start(phase, [] { return int64_t{0}; });
  }
  template <class Bytes>
  void start(StepPhase phase, Bytes&& bytes) {
    if (!phases_) return;
    stop();
    phase_ = static_cast<int>(phase);
    phases_->bytes[phase_] += bytes();
    t0_ = std::chrono::steady_clock::now();
  }
  void stop() {
    if (!phases_ || phase_ < 0) return;
    phases_->ns[phase_] += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0_).count();
    phase_ = -1;
  }

 private:
  StepPhases* phases_;
  int phase_ = -1;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace whale
