// whale compare: how far a model's next-token distributions are from a reference model's on a text, e.g. a q8 or q4
// checkpoint against the BF16 one it was made from. Reports top-1 agreement, mean KL(reference ‖ model) and both
// perplexities as JSON, like llama.cpp's `llama-perplexity --kl-divergence`.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "whale/cli/command.h"
#include "whale/core/error.h"
#include "whale/io/text_file.h"
#include "whale/model/model.h"
#include "whale/tokenizer/tokenizer.h"

namespace whale::cli {
namespace {

struct CompareOptions {
  std::string model, reference, text;
  FileLoad load = FileLoad::Auto;
  Activations activations = Activations::F32;  // the reference's exact products: the error measured is the format's
  int context = 256;
  int max_tokens = 2048;
  int chunk = 0;
  int threads = 0;
};

// log-softmax of one row, in double.
std::vector<double> log_softmax(const float* logits, size_t n) {
  double mx = -INFINITY;
  for (size_t i = 0; i < n; ++i) mx = std::max(mx, static_cast<double>(logits[i]));
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += std::exp(logits[i] - mx);
  const double lse = mx + std::log(sum);
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = logits[i] - lse;
  return out;
}

std::vector<float> forward_window(const Model& model, std::span<const int32_t> tokens, int chunk, ThreadPool& pool) {
  LatentKvCache cache = model.make_cache(static_cast<int>(tokens.size()));
  std::vector<float> logits;
  const size_t step = chunk > 0 ? static_cast<size_t>(chunk) : tokens.size();
  for (size_t i = 0; i < tokens.size(); i += step) {
    const std::vector<float> part =
        model.forward(tokens.subspan(i, std::min(step, tokens.size() - i)), cache, pool, AttentionForm::Absorbed);
    logits.insert(logits.end(), part.begin(), part.end());
  }
  return logits;
}

void run_compare(const CompareOptions& opt) {
  const std::string text = read_text_file(opt.text);
  const Tokenizer tokenizer = Tokenizer::load(opt.reference);
  std::vector<int32_t> tokens = tokenizer.encode(text, true);
  if (tokens.size() > static_cast<size_t>(opt.max_tokens)) tokens.resize(static_cast<size_t>(opt.max_tokens));
  if (tokens.size() < 2) fail("{}: the text has fewer than 2 tokens", opt.text);

  const Model model(opt.model, nullptr, opt.load, opt.activations),
      reference(opt.reference, nullptr, opt.load, opt.activations);
  if (model.config().vocab_size != reference.config().vocab_size)
    fail("--model has vocab_size {} but --reference has {}", model.config().vocab_size,
         reference.config().vocab_size);
  ThreadPool pool(opt.threads);
  const size_t vocab = static_cast<size_t>(model.config().vocab_size);

  int64_t positions = 0, agree = 0;
  double kl_sum = 0.0, kl_max = 0.0, nll_model = 0.0, nll_ref = 0.0;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t w0 = 0; w0 + 1 < tokens.size(); w0 += static_cast<size_t>(opt.context)) {
    const size_t len = std::min(static_cast<size_t>(opt.context), tokens.size() - w0);
    const std::span<const int32_t> window(tokens.data() + w0, len);
    const std::vector<float> lm = forward_window(model, window, opt.chunk, pool);
    const std::vector<float> lr = forward_window(reference, window, opt.chunk, pool);
    for (size_t t = 0; t < len; ++t) {
      const float* a = lm.data() + t * vocab;
      const float* b = lr.data() + t * vocab;
      if (std::max_element(a, a + vocab) - a == std::max_element(b, b + vocab) - b) ++agree;
      const std::vector<double> pa = log_softmax(a, vocab), pb = log_softmax(b, vocab);
      double kl = 0.0;
      for (size_t v = 0; v < vocab; ++v) kl += std::exp(pb[v]) * (pb[v] - pa[v]);
      kl_sum += kl;
      kl_max = std::max(kl_max, kl);
      if (w0 + t + 1 < tokens.size() && t + 1 < len) {
        nll_model -= pa[static_cast<size_t>(tokens[w0 + t + 1])];
        nll_ref -= pb[static_cast<size_t>(tokens[w0 + t + 1])];
      }
      ++positions;
    }
    fmt::print(stderr, "\rcompared {} / {} positions", positions, tokens.size());
  }
  fmt::print(stderr, "\n");
  const int64_t predicted = positions - static_cast<int64_t>((tokens.size() + opt.context - 1) / opt.context);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_stdout(fmt::format(
      "{{\n  \"model\": \"{}\",\n  \"reference\": \"{}\",\n  \"text\": \"{}\",\n  \"positions\": {},\n"
      "  \"context\": {},\n  \"chunk\": {},\n  \"top1_agreement\": {:.6f},\n  \"mean_kl\": {:.8f},\n"
      "  \"max_kl\": {:.8f},\n  \"perplexity_model\": {:.6f},\n  \"perplexity_reference\": {:.6f},\n"
      "  \"seconds\": {:.1f}\n}}\n",
      opt.model, opt.reference, opt.text, positions, opt.context, opt.chunk,
      static_cast<double>(agree) / static_cast<double>(positions), kl_sum / static_cast<double>(positions), kl_max,
      std::exp(nll_model / std::max<int64_t>(predicted, 1)), std::exp(nll_ref / std::max<int64_t>(predicted, 1)),
      seconds));
}

}  // namespace

Command register_compare(CLI::App& root) {
  auto opt = std::make_shared<CompareOptions>();
  CLI::App* app = root.add_subcommand(
      "compare", "Compare a model's next-token distributions with a reference model's on a text (top-1, KL)");
  app->add_option("--model", opt->model, "Model directory to evaluate, e.g. a q4 checkpoint")->required();
  add_load_option(app, opt->load);
  add_activations_option(app, opt->activations);
  app->add_option("--reference", opt->reference, "Reference model directory (its tokenizer encodes the text)")
      ->required();
  app->add_option("--text", opt->text, "UTF-8 text file")->required();
  app->add_option("--context", opt->context, "Tokens per window; each window starts a fresh cache (default 256)")
      ->check(at_least(2));
  app->add_option("--max-tokens", opt->max_tokens, "Use at most this many tokens of the text (default 2048)")
      ->check(at_least(2));
  app->add_option("--chunk", opt->chunk,
                  "Feed each window N tokens at a time (1 = the decode path; default: one prefill pass)")
      ->check(at_least(1));
  app->add_option("--threads", opt->threads, "Worker threads (default: one per CPU)")->check(at_least(0));
  return {app, [opt] { run_compare(*opt); }};
}

}  // namespace whale::cli
