#include "whale/model/ffn.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "whale/kernels/activations.h"
#include "whale/kernels/matmul.h"

namespace whale {

namespace {

// Buffers that the products below overwrite whole: left uninitialised. Value-initialising them (tens of MB per layer
// for a prompt) was about 4% of a q8 prefill of 512 tokens (`perf`: memset).
std::unique_ptr<float[]> product_buffer(size_t n) { return std::unique_ptr<float[]>(new float[n]); }

// swiglu_inplace over the pool in slices of at least this many elements: a 16-token decode step's experts hold ~130k,
// serial on one thread for ~0.1 ms per layer while the other waits; one token's ~8k stay on the calling thread.
// Swiglu gives an element the same value wherever a slice cuts the buffer.
constexpr int64_t kSwigluGrain = 32768;
// The combine of expert outputs over the pool from this many tokens per thread: a decode step's few tokens stay on
// the calling thread.
constexpr int64_t kCombineTokenGrain = 8;
// Gathering the experts' tokens over the pool from this many floats on.
constexpr size_t kParallelGatherFloats = 65536;
// The weight bytes a batch of products reads.
int64_t jobs_bytes(const std::vector<MatmulJob>& jobs) {
  int64_t bytes = 0;
  for (const MatmulJob& j : jobs) bytes += j.m > 0 ? weight_bytes(j.w) : 0;
  return bytes;
}

void swiglu_parallel(float* gate, const float* up, int64_t n, ThreadPool& pool) {
  pool.parallel_for(n, [&](int64_t a, int64_t b) { swiglu_inplace(gate + a, up + a, b - a); }, kSwigluGrain);
}

}  // namespace

void mlp_forward(const MlpWeights& w, const float* x, int n_tokens, float* out, ThreadPool& pool,
                 StepPhases* phases) {
  const PhaseTimer phase(phases, StepPhase::DenseMlp, [&] {
    return weight_bytes(w.gate_proj.view()) + weight_bytes(w.up_proj.view()) + weight_bytes(w.down_proj.view());
  });
  const int64_t inter = w.gate_proj.rows();
  const size_t n = static_cast<size_t>(n_tokens) * inter;
  const auto gate = product_buffer(n), up = product_buffer(n);
  const MatmulJob gate_up[] = {{w.gate_proj.view(), x, n_tokens, gate.get()}, {w.up_proj.view(), x, n_tokens, up.get()}};
  matmul_batch(gate_up, pool);
  swiglu_parallel(gate.get(), up.get(), static_cast<int64_t>(n), pool);
  matmul(w.down_proj.view(), gate.get(), n_tokens, out, pool);
}

void moe_forward(const ModelConfig& c, const MoeWeights& w, RouterFn router, const float* x, int n_tokens,
                 float* out, ThreadPool& pool, StepPhases* phases) {
  const int hidden = c.hidden_size, n_experts = c.n_routed_experts, top_k = c.num_experts_per_tok;
  const size_t T = static_cast<size_t>(n_tokens);

  // The router and the shared experts' gate and up read the same input: one pass. The router in exact f32 at any
  // token count, so that a token's experts do not depend on how its prompt was batched.
  std::vector<float> logits(T * n_experts);
  const size_t shared_n = w.shared_experts ? T * static_cast<size_t>(w.shared_experts->gate_proj.rows()) : 0;
  const auto shared_gate = product_buffer(shared_n), shared_up = product_buffer(shared_n);
  std::vector<MatmulJob> jobs = {{w.gate.view(), x, n_tokens, logits.data(), /*exact=*/true}};
  if (w.shared_experts) {
    jobs.push_back({w.shared_experts->gate_proj.view(), x, n_tokens, shared_gate.get()});
    jobs.push_back({w.shared_experts->up_proj.view(), x, n_tokens, shared_up.get()});
  }
  PhaseTimer phase(phases, StepPhase::RouterShared, [&] { return jobs_bytes(jobs); });
  matmul_batch(jobs, pool);
  phase.start(StepPhase::Routing);

  const RouterParams params =
      router_params(c, w.e_score_correction_bias.empty() ? nullptr : w.e_score_correction_bias.data());

  std::vector<int32_t> ids(T * top_k);
  std::vector<float> weights(ids.size());
  for (size_t t = 0; t < T; ++t)
    router(params, logits.data() + t * n_experts, ids.data() + t * top_k, weights.data() + t * top_k);

  // Per expert, the tokens routed to it (ascending token order) and their gate weights.
  std::vector<std::vector<std::pair<int, float>>> assigned(n_experts);
  for (size_t t = 0; t < T; ++t)
    for (int k = 0; k < top_k; ++k)
      assigned[ids[t * top_k + k]].emplace_back(static_cast<int>(t), weights[t * top_k + k]);

  // Every active expert's gate and up in one pass, then every down (and the shared experts' down) in another:
  // only the routed experts' weights are read, each once.
  struct Active {
    int expert;
    int64_t m;
    size_t x_at, h_at;  // offsets into xs ([m, hidden]) and gate/up ([m, inter])
  };
  std::vector<Active> active;
  size_t x_total = 0, h_total = 0;
  const int64_t inter = c.moe_intermediate_size;
  for (int e = 0; e < n_experts; ++e) {
    const int64_t m = static_cast<int64_t>(assigned[e].size());
    if (m == 0) continue;
    active.push_back({e, m, x_total, h_total});
    x_total += static_cast<size_t>(m) * hidden;
    h_total += static_cast<size_t>(m) * inter;
  }
  const auto xs = product_buffer(x_total), gate = product_buffer(h_total), up = product_buffer(h_total),
             ys = product_buffer(x_total);
  // Experts with several tokens get theirs gathered into xs, over the pool when that is megabytes (a prompt).
  const auto gather = [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      if (active[i].m == 1) continue;
      float* dst = xs.get() + active[i].x_at;
      for (const auto& [t, _] : assigned[active[i].expert])
        dst = std::copy_n(x + static_cast<size_t>(t) * hidden, hidden, dst);
    }
  };
  if (x_total >= kParallelGatherFloats) pool.parallel_for(static_cast<int64_t>(active.size()), gather);
  else gather(0, static_cast<int64_t>(active.size()));
  jobs.clear();
  for (const Active& a : active) {
    // An expert with one token reads that token's row in place: in decode every expert then shares one input, which
    // matmul_batch converts once for all of them instead of once per expert.
    const float* in = a.m > 1 ? xs.get() + a.x_at : x + static_cast<size_t>(assigned[a.expert].front().first) * hidden;
    const MlpWeights& e = w.experts[a.expert];
    jobs.push_back({e.gate_proj.view(), in, a.m, gate.get() + a.h_at});
    jobs.push_back({e.up_proj.view(), in, a.m, up.get() + a.h_at});
  }
  phase.start(StepPhase::Experts, [&] { return jobs_bytes(jobs); });
  matmul_batch(jobs, pool);
  phase.start(StepPhase::Swiglu);
  swiglu_parallel(gate.get(), up.get(), static_cast<int64_t>(h_total), pool);
  if (w.shared_experts) swiglu_parallel(shared_gate.get(), shared_up.get(), static_cast<int64_t>(shared_n), pool);

  jobs.clear();
  for (const Active& a : active)
    jobs.push_back({w.experts[a.expert].down_proj.view(), gate.get() + a.h_at, a.m, ys.get() + a.x_at});
  const size_t shared_out_n = w.shared_experts ? T * hidden : 0;
  const auto shared_out = product_buffer(shared_out_n);
  if (w.shared_experts)
    jobs.push_back({w.shared_experts->down_proj.view(), shared_gate.get(), n_tokens, shared_out.get()});
  phase.start(StepPhase::Downs, [&] { return jobs_bytes(jobs); });
  matmul_batch(jobs, pool);
  phase.start(StepPhase::Combine);

  // Each token's output: its experts' rows weighted and summed in ascending expert order, then the shared experts'.
  // Tokens are independent, so they split over the pool; the order of the sums per token is fixed (the same bits
  // for any split).
  std::vector<std::vector<std::pair<const float*, float>>> rows_of(T);
  for (const Active& a : active) {
    const float* src = ys.get() + a.x_at;
    for (const auto& [t, gate_weight] : assigned[a.expert]) {
      rows_of[t].emplace_back(src, gate_weight);
      src += hidden;
    }
  }
  pool.parallel_for(static_cast<int64_t>(T), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* dst = out + static_cast<size_t>(t) * hidden;
      std::fill(dst, dst + hidden, 0.0f);
      for (const auto& [src_row, gate_weight] : rows_of[t]) {
        const float* src = src_row;
        const float weight = gate_weight;  // plain locals: clang's OpenMP regions cannot use structured bindings
        // Vectorised, still a product then a sum per element (no contraction): the same bits as one at a time.
#pragma omp simd
        for (int j = 0; j < hidden; ++j) dst[j] += weight * src[j];
      }
      if (shared_out_n > 0) {
        const float* shared = shared_out.get() + static_cast<size_t>(t) * hidden;
        for (int j = 0; j < hidden; ++j) dst[j] += shared[j];
      }
    }
  }, kCombineTokenGrain);
}

}  // namespace whale
