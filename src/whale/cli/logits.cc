// whale logits: the logits of a token sequence as JSON, a contract that tools outside the project rely on:
// {"tokens":[...],"logits":[[one float per vocab entry], ... one row per position],"activations":A}, A "bf16" where
// BF16 products rounded their inputs (--activations bf16, the default, on a CPU that rounds them), else "f32".
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "whale/cli/command.h"
#include "whale/core/error.h"
#include "whale/core/process_stats.h"
#include "whale/kernels/matmul.h"
#include "whale/model/model.h"

namespace whale::cli {
namespace {

struct LogitsOptions {
  std::string model;
  FileLoad load = FileLoad::Auto;
  Activations activations = kDefaultActivations;
  std::string tokens;
  int chunk = 0;
  std::string attention = "absorbed";
  int threads = 0;
  bool verbose = false;
};

std::vector<int32_t> parse_token_list(const std::string& text) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < 0 || v > INT32_MAX)
      fail("--tokens: \"{}\" is not a token id (expected comma-separated non-negative integers)", item);
    ids.push_back(static_cast<int32_t>(v));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return ids;
}

double mib(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

void run_logits(const LogitsOptions& opt) {
  const std::vector<int32_t> tokens = parse_token_list(opt.tokens);
  const AttentionForm form = parse_attention_form(opt.attention);

  const auto t0 = std::chrono::steady_clock::now();
  const Model model(opt.model, nullptr, opt.load, opt.activations);
  const auto t1 = std::chrono::steady_clock::now();
  if (opt.verbose)
    fmt::print(stderr, "loaded {} ({:.1f} MiB of safetensors) in {:.3f} s; RSS {:.1f} MiB\n", opt.model,
               mib(model.checkpoint().total_file_bytes()), std::chrono::duration<double>(t1 - t0).count(),
               mib(resident_bytes()));

  ThreadPool pool(opt.threads);
  LatentKvCache cache = model.make_cache(static_cast<int>(tokens.size()));
  const size_t vocab = static_cast<size_t>(model.config().vocab_size);
  std::vector<float> logits;
  logits.reserve(tokens.size() * vocab);
  const size_t chunk = opt.chunk > 0 ? static_cast<size_t>(opt.chunk) : tokens.size();
  for (size_t i = 0; i < tokens.size(); i += chunk) {
    const size_t n = std::min(chunk, tokens.size() - i);
    const std::vector<float> part = model.forward(std::span(tokens).subspan(i, n), cache, pool, form);
    logits.insert(logits.end(), part.begin(), part.end());
  }
  const auto t2 = std::chrono::steady_clock::now();
  if (opt.verbose)
    fmt::print(stderr, "forward of {} tokens in {:.3f} s; RSS {:.1f} MiB, peak {:.1f} MiB\n", tokens.size(),
               std::chrono::duration<double>(t2 - t1).count(), mib(resident_bytes()), mib(peak_resident_bytes()));

  for (size_t i = 0; i < logits.size(); ++i)
    if (!std::isfinite(logits[i]))
      fail("logit {} of position {} is not finite: the checkpoint holds NaN or infinite weights", i % vocab,
           i / vocab);

  std::string out;
  out.reserve(logits.size() * 12 + 64);
  out += "{\"tokens\":[";
  for (size_t i = 0; i < tokens.size(); ++i) fmt::format_to(std::back_inserter(out), "{}{}", i ? "," : "", tokens[i]);
  out += "],\"logits\":[";
  for (size_t t = 0; t < tokens.size(); ++t) {
    out += t ? ",[" : "[";
    for (size_t v = 0; v < vocab; ++v)
      fmt::format_to(std::back_inserter(out), "{}{}", v ? "," : "", logits[t * vocab + v]);
    out += "]";
  }
  out += "]";
  // Whether BF16 products did round their inputs (bf16 asked for, and this CPU rounds them: rounds_bf16_activations),
  // so that a checker knows which reference to compare with.
  fmt::format_to(std::back_inserter(out), ",\"activations\":\"{}\"",
                 opt.activations == Activations::Bf16 && rounds_bf16_activations() ? "bf16" : "f32");
  out += "}\n";
  write_stdout(out);
}

}  // namespace

Command register_logits(CLI::App& root) {
  auto opt = std::make_shared<LogitsOptions>();
  CLI::App* app = root.add_subcommand("logits", "Print the logits of a token sequence as JSON");
  app->add_option("--model", opt->model, "Model directory in the Hugging Face layout (config.json + safetensors)")
      ->required();
  add_load_option(app, opt->load);
  add_activations_option(app, opt->activations);
  app->add_option("--tokens", opt->tokens, "Comma-separated token ids, e.g. 5,17,42")->required();
  app->add_option("--chunk", opt->chunk,
                  "Feed the tokens N at a time through the latent cache (1 = pure decode; default: one pass)")
      ->check(at_least(1));
  app->add_option("--attention", opt->attention, "MLA form: absorbed (latent, the default) or naive")
      ->check(CLI::IsMember({"absorbed", "naive"}));
  app->add_option("--threads", opt->threads, "Worker threads (default: one per CPU)")->check(at_least(0));
  app->add_flag("--verbose", opt->verbose, "Report load time and memory use on stderr");
  return {app, [opt] { run_logits(*opt); }};
}

}  // namespace whale::cli
