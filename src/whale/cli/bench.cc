// whale bench: prefill and decode speed of a model, the bytes of weights each decoded token reads, and the memory
// read bandwidth measured in the same run, as one JSON object.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "whale/cli/command.h"
#include "whale/cli/progress.h"
#include "whale/core/error.h"
#include "whale/core/process_stats.h"
#include "whale/model/model.h"

namespace whale::cli {
namespace {

struct BenchOptions {
  std::string model;
  int prompt = 512;
  int generate = 128;
  int threads = 0;
  int repetitions = 3;
  int bandwidth_mib = 1024;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

uint64_t linear_bytes(const Linear& l) {
  return static_cast<uint64_t>(l.rows()) * l.cols() * dtype_size(l.base.dtype) + l.scale.size() * sizeof(float);
}
uint64_t mlp_bytes(const MlpWeights& m) { return linear_bytes(m.gate_proj) + linear_bytes(m.up_proj) + linear_bytes(m.down_proj); }

// Weight bytes one decoded token reads: every layer's attention and dense or shared FFN, top_k routed experts per
// MoE layer (experts of one layer have equal size), the router, one embedding row and the LM head.
uint64_t weight_bytes_per_token(const Model& model) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  uint64_t bytes = linear_bytes(w.lm_head) + linear_bytes(w.embed_tokens) / std::max(c.vocab_size, 1);
  for (const LayerWeights& l : w.layers) {
    const AttentionWeights& a = l.self_attn;
    for (const auto* lin : {a.q_proj ? &*a.q_proj : nullptr, a.q_a_proj ? &*a.q_a_proj : nullptr,
                            a.q_b_proj ? &*a.q_b_proj : nullptr, &a.kv_a_proj_with_mqa, &a.kv_b_proj, &a.o_proj})
      if (lin) bytes += linear_bytes(*lin);
    if (l.mlp) bytes += mlp_bytes(*l.mlp);
    if (l.moe) {
      bytes += linear_bytes(l.moe->gate) + static_cast<uint64_t>(c.num_experts_per_tok) * mlp_bytes(l.moe->experts[0]);
      if (l.moe->shared_experts) bytes += mlp_bytes(*l.moe->shared_experts);
    }
  }
  return bytes;
}

// Read bandwidth: every thread sums its slice of a buffer much larger than the caches; GB/s of the median run.
double measure_read_bandwidth(ThreadPool& pool, size_t mib, int repetitions) {
  const size_t n = mib * (1 << 20) / sizeof(float);
  std::vector<float> buffer(n);
  pool.parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e) { std::fill(buffer.begin() + b, buffer.begin() + e, 1.0f); });
  std::vector<double> rates;
  std::vector<double> sums(pool.size());
  for (int r = 0; r < repetitions; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e) {
      float acc[16] = {};
      int64_t i = b;
      for (; i + 16 <= e; i += 16)
        for (int k = 0; k < 16; ++k) acc[k] += buffer[i + k];
      for (; i < e; ++i) acc[0] += buffer[i];
      sums[b * pool.size() / n] = std::accumulate(acc, acc + 16, 0.0);
    });
    rates.push_back(static_cast<double>(n * sizeof(float)) / seconds_since(t0) / 1e9);
  }
  if (std::accumulate(sums.begin(), sums.end(), 0.0) < 0) fmt::print(stderr, "?");  // keeps the sums alive
  return median(rates);
}

void run_bench(const BenchOptions& opt) {
  const auto t_load = std::chrono::steady_clock::now();
  ProgressBar bar("loading " + opt.model);
  const Model model(opt.model, [&](int done, int total) { bar.update(done, total); });
  bar.finish();
  const double load_seconds = seconds_since(t_load);
  const ModelConfig& c = model.config();
  ThreadPool pool(opt.threads);

  std::mt19937 rng(1234);
  std::vector<int32_t> prompt(opt.prompt);
  for (int32_t& t : prompt) t = static_cast<int32_t>(rng() % c.vocab_size);

  std::vector<double> prefill, decode;
  for (int r = 0; r < opt.repetitions; ++r) {
    LatentKvCache cache = model.make_cache(opt.prompt + opt.generate + 1);
    auto t0 = std::chrono::steady_clock::now();
    if (opt.prompt > 0) {
      model.forward(prompt, cache, pool);
      prefill.push_back(opt.prompt / seconds_since(t0));
    }
    t0 = std::chrono::steady_clock::now();
    int32_t token = static_cast<int32_t>(rng() % c.vocab_size);
    for (int i = 0; i < opt.generate; ++i) {
      const std::vector<float> logits = model.forward(std::span(&token, 1), cache, pool);
      token = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
    if (opt.generate > 0) decode.push_back(opt.generate / seconds_since(t0));
  }
  const double bandwidth = measure_read_bandwidth(pool, opt.bandwidth_mib, std::max(opt.repetitions, 3));

  const uint64_t weight_bytes = weight_bytes_per_token(model);
  // The latent cache read per decoded token, at the mean context length of the decode phase.
  const uint64_t cache_bytes = static_cast<uint64_t>(c.num_hidden_layers) * c.latent_dim() * sizeof(float) *
                               (opt.prompt + opt.generate / 2);
  nlohmann::ordered_json j;
  j["model"] = opt.model;
  j["threads"] = pool.size();
  j["prompt_tokens"] = opt.prompt;
  j["generated_tokens"] = opt.generate;
  j["repetitions"] = opt.repetitions;
  j["load_seconds"] = load_seconds;
  j["checkpoint_bytes"] = model.checkpoint().total_file_bytes();
  if (!prefill.empty()) j["prefill_tok_s"] = median(prefill);
  if (!decode.empty()) {
    const double tps = median(decode);
    j["decode_tok_s"] = tps;
    j["bytes_per_token"] = weight_bytes + cache_bytes;
    j["decode_gb_s"] = (weight_bytes + cache_bytes) * tps / 1e9;
    j["bandwidth_percent"] = 100.0 * (weight_bytes + cache_bytes) * tps / 1e9 / bandwidth;
  }
  j["memory_read_gb_s"] = bandwidth;
  j["peak_rss_bytes"] = peak_resident_bytes();
  fmt::print("{}\n", j.dump(2));
}

}  // namespace

Command register_bench(CLI::App& root) {
  auto opt = std::make_shared<BenchOptions>();
  CLI::App* app = root.add_subcommand(
      "bench", "Measure prefill and decode speed, bytes read per token and memory bandwidth (JSON)");
  app->add_option("--model", opt->model, "Model directory")->required();
  app->add_option("-p,--prompt", opt->prompt, "Prompt tokens to prefill (default 512)")->check(at_least(0));
  app->add_option("-n,--n-gen", opt->generate, "Tokens to decode after the prompt (default 128)")->check(at_least(0));
  app->add_option("--threads", opt->threads, "Worker threads (default: one per CPU)")->check(at_least(0));
  app->add_option("-r,--repetitions", opt->repetitions, "Runs to take the median of (default 3)")->check(at_least(1));
  app->add_option("--bandwidth-mib", opt->bandwidth_mib, "Buffer for the bandwidth measurement (default 1024)")
      ->check(at_least(1));
  return {app, [opt] { run_bench(*opt); }};
}

}  // namespace whale::cli
