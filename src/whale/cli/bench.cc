// whale bench: prefill and decode speed of a model, the bytes each decoded token reads, and the memory read bandwidth
// measured in the same run (runtime/memory_bandwidth.h), as one JSON object on stdout. Progress goes to stderr.
//
// For each thread count: R repetitions of [prefill of p tokens, decode of n tokens, bandwidth probe], alternating so
// that a slow phase of the machine hits all three alike; medians (and min/max) of the R values are reported.
// See docs/performance.md for every field.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "whale/cli/command.h"
#include "whale/cli/progress.h"
#include "whale/core/error.h"
#include "whale/core/process_stats.h"
#include "whale/kernels/activations.h"
#include "whale/kernels/matmul.h"
#include "whale/kernels/weight.h"
#include "whale/model/config.h"
#include "whale/model/model.h"
#include "whale/runtime/memory_bandwidth.h"

namespace whale::cli {
namespace {

// Decode runs start from a random prompt of --depth tokens (prefilled, not timed), so decode speed does not depend on
// -p and the mean context of decode is depth + (n + 1) / 2. The default is short: the weights' bytes dominate a step.
constexpr int kDefaultDepth = 16;
constexpr int kMaxTokens = 1 << 20;
constexpr int kMaxRepetitions = 1000;
constexpr int kMaxThreads = 4096;
constexpr int kMaxBandwidthMib = 1 << 20;
constexpr int kMaxParallel = 1024;

struct BenchOptions {
  std::string model;
  FileLoad load = FileLoad::Auto;
  Activations activations = kDefaultActivations;
  int prompt = 512;
  int generate = 128;
  int depth = kDefaultDepth;  // the prompt each decode run starts from
  std::string threads;  // comma list; not given: one per hardware thread
  bool threads_given = false;
  int repetitions = 3;
  bool warmup = true;
  int bandwidth_mib = 1024;
  int parallel = 1;  // > 1: also decode this many sequences at once (one batched step per token of each)
  bool phases = false;  // time each phase of the timed decode steps (decode_phases)
  std::string json_file;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Stats {
  double median = 0, min = 0, max = 0;
};

// Median (the mean of the middle two for an even count), min and max.
Stats stats(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return {n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v.front(), v.back()};
}

std::vector<int> parse_thread_list(const std::string& text, bool given) {
  std::vector<int> threads;
  if (!given) return {static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))};
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t used = 0;
    long value = 0;
    try {
      value = std::stol(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || value < 1 || value > kMaxThreads)
      fail("--threads {}: \"{}\" is not a thread count (a comma-separated list of integers from 1 to {}, e.g. 1,2)",
           text, item, kMaxThreads);
    threads.push_back(static_cast<int>(value));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return threads;
}

// The greedy token of logits' last row of `vocab` values (ties to the lowest id). In SIMD: std::max_element took
// about 100 µs of each decoded token over a 129280-token vocabulary (Zen 5 VM), llama-bench samples nothing.
int32_t greedy_token(const std::vector<float>& logits, int vocab) {
  return static_cast<int32_t>(first_argmax(logits.data() + (logits.size() - static_cast<size_t>(vocab)), vocab));
}

// Stored bytes of the weight (kernels/weight.h): F8_E4M3 with its block scales, q8/q4 padded, with their f16 scales.
uint64_t linear_bytes(const Linear& l) { return static_cast<uint64_t>(weight_bytes(l.base)); }
uint64_t mlp_bytes(const MlpWeights& m) {
  return linear_bytes(m.gate_proj) + linear_bytes(m.up_proj) + linear_bytes(m.down_proj);
}
uint64_t vector_bytes(const std::vector<float>& v) { return v.size() * sizeof(float); }

struct TokenBytes {
  uint64_t weights = 0;         // every weight byte one decoded token reads, routed experts included
  uint64_t routed_experts = 0;  // of which: num_experts_per_tok average-sized experts per MoE layer
};

// Weight bytes one decoded token reads: every layer's attention, norms, dense MLP or router and shared experts, and
// num_experts_per_tok routed experts of the layer's average expert size; one row of the embedding table; the final
// norm and the LM head. The MTP layer is not used by decode and not counted.
TokenBytes weight_bytes_per_token(const Model& model) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  TokenBytes t;
  t.weights = linear_bytes(w.lm_head) + vector_bytes(w.norm) +
              linear_bytes(w.embed_tokens) / static_cast<uint64_t>(std::max<int64_t>(w.embed_tokens.rows(), 1));
  for (const LayerWeights& l : w.layers) {
    const AttentionWeights& a = l.self_attn;
    for (const Linear* lin : {a.q_proj ? &*a.q_proj : nullptr, a.q_a_proj ? &*a.q_a_proj : nullptr,
                              a.q_b_proj ? &*a.q_b_proj : nullptr, &a.kv_a_proj_with_mqa, &a.kv_b_proj, &a.o_proj})
      if (lin) t.weights += linear_bytes(*lin);
    t.weights += vector_bytes(l.input_layernorm) + vector_bytes(l.post_attention_layernorm) +
                 vector_bytes(a.q_a_layernorm) + vector_bytes(a.kv_a_layernorm);
    if (l.mlp) t.weights += mlp_bytes(*l.mlp);
    if (l.moe) {
      t.weights += linear_bytes(l.moe->gate) + vector_bytes(l.moe->e_score_correction_bias);
      if (l.moe->shared_experts) t.weights += mlp_bytes(*l.moe->shared_experts);
      if (!l.moe->experts.empty()) {
        uint64_t all = 0;
        for (const MlpWeights& e : l.moe->experts) all += mlp_bytes(e);
        const auto k = static_cast<uint64_t>(std::min<size_t>(c.num_experts_per_tok, l.moe->experts.size()));
        const uint64_t routed = all * k / l.moe->experts.size();
        t.weights += routed;
        t.routed_experts += routed;
      }
    }
  }
  return t;
}

struct ThreadResult {
  int threads = 0;
  std::vector<double> prefill, decode, parallel_decode, bandwidth;
  StepPhases phases;  // the timed decode steps of every repetition, with --phases
};

class BenchRun {
 public:
  explicit BenchRun(const BenchOptions& opt) : opt_(opt) {}

  void run() {
    const std::vector<int> thread_counts = parse_thread_list(opt_.threads, opt_.threads_given);
    check_limits();
    std::ofstream json_out;
    if (!opt_.json_file.empty()) {  // opened now, so that a bad path fails before minutes of measuring
      json_out.open(opt_.json_file, std::ios::binary | std::ios::trunc);
      if (!json_out) fail("--json {}: cannot write: {}", opt_.json_file, std::strerror(errno));
    }

    check_context(load_model_config(opt_.model));  // before the (possibly long) load

    const auto t_load = std::chrono::steady_clock::now();
    ProgressBar bar("loading " + opt_.model);
    const Model model(opt_.model, [&](int done, int total) { bar.update(done, total); }, opt_.load, opt_.activations);
    bar.finish();
    const double load_seconds = seconds_since(t_load);

    std::vector<ThreadResult> results;
    uint64_t peak_rss = peak_resident_bytes();
    bool peak_clean = true;  // VmHWM does not include a bandwidth buffer
    std::string kernel;
    bool huge_pages = false;
    size_t buffer_bytes = 0;
    for (int threads : thread_counts) {
      ThreadPool pool(threads);
      ThreadResult r;
      r.threads = pool.size();
      std::unique_ptr<ReadBandwidthProbe> probe;
      // Untimed warm-up, as llama-bench does: the first pass over the weights pays for mapping their pages and for
      // growing the heap, which later passes (and a running server) do not.
      if (opt_.warmup) {
        if (opt_.prompt > 0) run_prefill(model, pool);
        if (opt_.generate > 0) run_decode(model, pool, 1);
        if (opt_.generate > 0 && opt_.parallel > 1) run_parallel_decode(model, pool, 1);
      }
      for (int rep = 0; rep < opt_.repetitions; ++rep) {
        if (opt_.prompt > 0) r.prefill.push_back(run_prefill(model, pool));
        if (opt_.generate > 0) r.decode.push_back(run_decode(model, pool, -1, opt_.phases ? &r.phases : nullptr));
        if (opt_.generate > 0 && opt_.parallel > 1) r.parallel_decode.push_back(run_parallel_decode(model, pool));
        if (!probe) {
          // The peak of the model's own memory: load, and a prefill and a decode at this thread count, before the
          // bandwidth buffer exists.
          if (peak_clean) peak_rss = std::max(peak_rss, peak_resident_bytes());
          probe = std::make_unique<ReadBandwidthProbe>(pool, static_cast<size_t>(opt_.bandwidth_mib) << 20);
          huge_pages = probe->huge_pages();
          buffer_bytes = probe->total_bytes();
        }
        r.bandwidth.push_back(probe->ceiling(kCeilingPasses));
        fmt::print(stderr, "threads {} run {}/{}:{}{}{} memory read {:.2f} GB/s\n", r.threads, rep + 1, opt_.repetitions,
                   r.prefill.empty() ? "" : fmt::format(" prefill {:.2f} tok/s,", r.prefill.back()),
                   r.decode.empty() ? "" : fmt::format(" decode {:.2f} tok/s,", r.decode.back()),
                   r.parallel_decode.empty()
                       ? ""
                       : fmt::format(" {} sequences {:.2f} tok/s,", opt_.parallel, r.parallel_decode.back()),
                   r.bandwidth.back());
      }
      probe.reset();
      peak_clean = peak_clean && reset_peak_resident();
      results.push_back(std::move(r));
    }
    kernel = read_kernel_target();

    const std::string text = report(model, load_seconds, results, peak_rss, kernel, huge_pages, buffer_bytes).dump(2);
    write_stdout(text + "\n");
    if (json_out.is_open()) {
      json_out << text << "\n";
      json_out.flush();
      if (!json_out) fail("--json {}: cannot write: {}", opt_.json_file, std::strerror(errno));
    }
  }

 private:
  void check_limits() const {
    if (opt_.prompt > kMaxTokens) fail("-p {}: at most {} prompt tokens", opt_.prompt, kMaxTokens);
    if (opt_.generate > kMaxTokens) fail("-n {}: at most {} generated tokens", opt_.generate, kMaxTokens);
    if (opt_.depth > kMaxTokens) fail("-d {}: at most {} tokens of depth", opt_.depth, kMaxTokens);
    if (opt_.prompt == 0 && opt_.generate == 0) fail("-p 0 -n 0: nothing to measure (give -p or -n above 0)");
    if (opt_.parallel > kMaxParallel) fail("--parallel {}: at most {} sequences", opt_.parallel, kMaxParallel);
    if (opt_.parallel > 1 && opt_.generate == 0)
      fail("--parallel {} -n 0: parallel decode needs tokens to decode (give -n above 0)", opt_.parallel);
    if (opt_.repetitions > kMaxRepetitions) fail("-r {}: at most {} repetitions", opt_.repetitions, kMaxRepetitions);
    if (opt_.bandwidth_mib > kMaxBandwidthMib)
      fail("--bandwidth-mib {}: at most {}", opt_.bandwidth_mib, kMaxBandwidthMib);
  }

  // Prefill needs p positions; decode depth + n.
  void check_context(const ModelConfig& c) const {
    const int needed = std::max(opt_.prompt, opt_.generate > 0 ? opt_.depth + opt_.generate : 0);
    if (needed > c.max_position_embeddings)
      fail("-p {} -n {} -d {}: needs a context of {} tokens (prefill: -p, decode: -d + -n), but the model's "
           "max_position_embeddings is {}",
           opt_.prompt, opt_.generate, opt_.depth, needed, c.max_position_embeddings);
  }

  std::vector<int32_t> random_tokens(int n, int vocab) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (int32_t& x : t) x = static_cast<int32_t>(rng_() % static_cast<uint32_t>(vocab));
    return t;
  }

  // tok/s of one prefill of p random tokens into a fresh cache.
  double run_prefill(const Model& model, ThreadPool& pool) {
    const std::vector<int32_t> prompt = random_tokens(opt_.prompt, model.config().vocab_size);
    LatentKvCache cache = model.make_cache(opt_.prompt);
    const auto t0 = std::chrono::steady_clock::now();
    model.forward(prompt, cache, pool, AttentionForm::Absorbed, Model::LogitRows::Last);
    return opt_.prompt / seconds_since(t0);
  }

  // tok/s of n greedy decode steps after a prompt of --depth tokens (prefilled untimed) in a fresh cache; `phases`
  // (may be null) gets the decode steps' phases.
  double run_decode(const Model& model, ThreadPool& pool, int steps = -1, StepPhases* phases = nullptr) {
    if (steps < 0) steps = opt_.generate;
    const int vocab = model.config().vocab_size;
    const std::vector<int32_t> prompt = random_tokens(opt_.depth, vocab);
    LatentKvCache cache = model.make_cache(opt_.depth + steps);
    std::vector<float> logits = model.forward(prompt, cache, pool, AttentionForm::Absorbed, Model::LogitRows::Last);
    int32_t token = greedy_token(logits, vocab);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i) {
      logits = model.forward(std::span(&token, 1), cache, pool, AttentionForm::Absorbed, Model::LogitRows::All, phases);
      token = greedy_token(logits, vocab);
    }
    return steps / seconds_since(t0);
  }

  // Aggregate tok/s of n greedy decode steps of P sequences at once (Model::forward_batch: one pass over the weights
  // per step for all P tokens), each after its own short random prompt (prefilled together, untimed): what a server
  // running P streams gets from the model, without tokenizing, sampling or HTTP.
  double run_parallel_decode(const Model& model, ThreadPool& pool, int steps = -1) {
    if (steps < 0) steps = opt_.generate;
    const int vocab = model.config().vocab_size;
    const auto n = static_cast<size_t>(opt_.parallel);
    std::vector<std::vector<int32_t>> prompts(n);
    std::vector<LatentKvCache> caches;
    caches.reserve(n);
    std::vector<Model::SequenceStep> batch(n);
    for (size_t i = 0; i < n; ++i) {
      prompts[i] = random_tokens(opt_.depth, vocab);
      caches.push_back(model.make_cache(opt_.depth + steps));
      batch[i] = {prompts[i], &caches[i], Model::LogitRows::Last};
    }
    std::vector<int32_t> tokens(n);
    const auto take_argmax = [&](const std::vector<std::vector<float>>& logits) {
      for (size_t i = 0; i < n; ++i) {
        tokens[i] = greedy_token(logits[i], vocab);
        batch[i].tokens = std::span(&tokens[i], 1);
      }
    };
    take_argmax(model.forward_batch(batch, pool));
    const auto t0 = std::chrono::steady_clock::now();
    for (int s = 0; s < steps; ++s) take_argmax(model.forward_batch(batch, pool));
    return static_cast<double>(n) * steps / seconds_since(t0);
  }

  nlohmann::ordered_json report(const Model& model, double load_seconds, const std::vector<ThreadResult>& results,
                                uint64_t peak_rss, const std::string& kernel, bool huge_pages,
                                size_t buffer_bytes) const {
    const ModelConfig& c = model.config();
    const TokenBytes w = weight_bytes_per_token(model);
    // The latent cache (f32 rows of kv_lora_rank + qk_rope_head_dim per layer) read by the attention of each decoded
    // token, at the mean context of the decode phase: token i of n attends to depth + i + 1 positions.
    const double mean_context = opt_.generate > 0 ? opt_.depth + (opt_.generate + 1) / 2.0 : 0;
    const auto cache_bytes = static_cast<uint64_t>(static_cast<double>(c.num_hidden_layers) * c.latent_dim() *
                                                   sizeof(float) * mean_context + 0.5);
    const uint64_t bytes_per_token = w.weights + cache_bytes;

    nlohmann::ordered_json j;
    j["model"] = opt_.model;
    j["prompt_tokens"] = opt_.prompt;
    j["generated_tokens"] = opt_.generate;
    j["parallel"] = opt_.parallel;
    j["decode_prompt_tokens"] = opt_.generate > 0 ? opt_.depth : 0;
    j["repetitions"] = opt_.repetitions;
    j["warmup"] = opt_.warmup;
    j["load"] = file_load_name(model.checkpoint().load());
    j["activations"] = opt_.activations == Activations::Bf16 && rounds_bf16_activations() ? "bf16" : "f32";
    j["load_seconds"] = load_seconds;
    j["checkpoint_bytes"] = model.checkpoint().total_file_bytes();
    // After the runs: how much of the weights' memory the kernel backs with huge pages (small pages slow decode).
    j["checkpoint_huge_page_bytes"] = model.checkpoint().huge_page_bytes();
    j["bytes_per_token"] = bytes_per_token;
    j["weight_bytes_per_token"] = w.weights;
    j["routed_expert_bytes_per_token"] = w.routed_experts;
    j["cache_bytes_per_token"] = cache_bytes;
    j["decode_mean_context"] = mean_context;
    j["bandwidth_buffer_bytes"] = buffer_bytes;
    j["bandwidth_kernel"] = kernel;
    j["bandwidth_huge_pages"] = huge_pages;
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    const ThreadResult& first = results.front();
    for (const ThreadResult& r : results) {
      nlohmann::ordered_json o;
      o["threads"] = r.threads;
      const auto put = [&](const std::string& key, const std::vector<double>& v) {
        const Stats s = stats(v);
        o[key] = s.median;
        o[key + "_min"] = s.min;
        o[key + "_max"] = s.max;
      };
      if (!r.prefill.empty()) put("prefill_tok_s", r.prefill);
      if (!r.decode.empty()) put("decode_tok_s", r.decode);
      if (!r.parallel_decode.empty()) {
        put("parallel_decode_tok_s", r.parallel_decode);
        // Against one sequence, run by run (neighbours in time, as the bandwidth ratio below).
        std::vector<double> paired;
        for (size_t i = 0; i < r.parallel_decode.size() && i < r.decode.size(); ++i)
          paired.push_back(r.parallel_decode[i] / r.decode[i]);
        o["parallel_speedup_paired"] = stats(paired).median;
      }
      put("memory_read_gb_s", r.bandwidth);
      const double bandwidth = stats(r.bandwidth).median;
      if (!r.decode.empty()) {
        const double gb_s = static_cast<double>(bytes_per_token) * stats(r.decode).median / 1e9;
        o["decode_gb_s"] = gb_s;
        o["bandwidth_percent"] = 100.0 * gb_s / bandwidth;
        // Each run's decode against the probe that followed it: on a machine whose bandwidth moves from minute to
        // minute (a shared VM), the ratio of neighbours is steadier than the ratio of the two medians.
        std::vector<double> paired;
        for (size_t i = 0; i < r.decode.size() && i < r.bandwidth.size(); ++i)
          paired.push_back(100.0 * static_cast<double>(bytes_per_token) * r.decode[i] / 1e9 / r.bandwidth[i]);
        o["bandwidth_percent_paired"] = stats(paired).median;
      }
      if (!r.prefill.empty()) o["prefill_speedup"] = stats(r.prefill).median / stats(first.prefill).median;
      if (!r.decode.empty()) o["decode_speedup"] = stats(r.decode).median / stats(first.decode).median;
      o["memory_read_speedup"] = bandwidth / stats(first.bandwidth).median;
      if (opt_.phases && r.phases.steps > 0) {
        double decode_seconds = 0;  // the timed decode runs, all of them
        for (double tok_s : r.decode) decode_seconds += opt_.generate / tok_s;
        o["decode_phases"] = phases_report(r.phases, decode_seconds, bandwidth);
      }
      list.push_back(std::move(o));
    }
    j["results"] = std::move(list);
    j["peak_rss_bytes"] = peak_rss;
    return j;
  }

  // Per phase of the timed decode steps: ms per token, share of the decode's time, weight bytes per token and the
  // rate they were read at (GB/s, and % of the probe's median) where the phase reads weights; "other" is the rest of
  // the decode's time (embedding, the greedy pick, the calls' own setup).
  static nlohmann::ordered_json phases_report(const StepPhases& p, double decode_seconds, double probe_gb_s) {
    int64_t phased_ns = 0;
    for (int64_t ns : p.ns) phased_ns += ns;
    const double total_ns = std::max(decode_seconds * 1e9, static_cast<double>(phased_ns));
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    const double steps = static_cast<double>(p.steps);
    const auto share = [&](double ns) { return total_ns > 0 ? 100.0 * ns / total_ns : 0.0; };
    for (int i = 0; i < StepPhases::kCount; ++i) {
      nlohmann::ordered_json o;
      o["ms_per_token"] = static_cast<double>(p.ns[i]) / 1e6 / steps;
      o["share_percent"] = share(static_cast<double>(p.ns[i]));
      if (p.bytes[i] > 0) {
        o["weight_bytes_per_token"] = static_cast<double>(p.bytes[i]) / steps;
        const double gb_s = p.ns[i] > 0 ? static_cast<double>(p.bytes[i]) / static_cast<double>(p.ns[i]) : 0.0;
        o["gb_s"] = gb_s;
        o["bandwidth_percent"] = probe_gb_s > 0 ? 100.0 * gb_s / probe_gb_s : 0.0;
      }
      out[step_phase_name(static_cast<StepPhase>(i))] = std::move(o);
    }
    const double other_ns = total_ns - static_cast<double>(phased_ns);
    out["other"] = {{"ms_per_token", other_ns / 1e6 / steps}, {"share_percent", share(other_ns)}};
    return out;
  }

  const BenchOptions& opt_;
  std::mt19937 rng_{1234};
};

}  // namespace

Command register_bench(CLI::App& root) {
  auto opt = std::make_shared<BenchOptions>();
  CLI::App* app = root.add_subcommand(
      "bench", "Measure prefill and decode speed, bytes read per token and memory bandwidth (JSON on stdout)");
  app->add_option("--model", opt->model, "Model directory")->required();
  add_load_option(app, opt->load);
  add_activations_option(app, opt->activations);
  app->add_option("-p,--prompt", opt->prompt, "Prompt tokens to prefill (default 512; 0: no prefill)")
      ->check(at_least(0));
  app->add_option("-n,--n-gen", opt->generate,
                  "Tokens to decode after a prompt of --depth tokens (default 128; 0: no decode)")
      ->check(at_least(0));
  app->add_option("-d,--depth", opt->depth,
                  fmt::format("Context before decode starts: each decode run (and each --parallel sequence) first "
                              "prefills a random prompt of this many tokens, untimed, so that its attention reads "
                              "that much latent cache (default {})",
                              kDefaultDepth))
      ->check(at_least(1));
  app->add_option_function<std::string>(
      "--threads",
      [opt](const std::string& v) {
        opt->threads = v;
        opt->threads_given = true;
      },
      "Threads, or a comma-separated list of thread counts to compare, e.g. 1,2 (default: one per CPU)");
  app->add_option("-r,--repetitions", opt->repetitions,
                  "Runs of prefill, decode and bandwidth probe, alternating; medians are reported (default 3)")
      ->check(at_least(1));
  app->add_flag("!--no-warmup", opt->warmup,
               "Skip the untimed warm-up (one prefill and one decode step per thread count before the timed runs)");
  app->add_option("--bandwidth-mib", opt->bandwidth_mib,
                  "Buffer of the memory bandwidth probe, all threads together (default 1024)")
      ->check(at_least(1));
  app->add_option("--parallel", opt->parallel,
                  "Also decode this many sequences at once, each after its own --depth-token prompt, one batched step "
                  "per token (what a server running that many streams gets); reports their aggregate tok/s "
                  "(default 1: off)")
      ->check(at_least(1));
  app->add_flag("--phases", opt->phases,
               "Also time each phase of the timed decode steps (projections, attention, routing, each weight pass, "
               "the work between passes) and report them per token as decode_phases, with each pass's GB/s; the "
               "timers cost about a microsecond a step");
  app->add_option("--json", opt->json_file, "Also write the JSON to this file");
  return {app, [opt] { BenchRun(*opt).run(); }};
}

}  // namespace whale::cli
