// whale run: generate a continuation of a prompt and stream it to stdout.
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "whale/cli/command.h"
#include "whale/cli/progress.h"
#include "whale/core/error.h"
#include "whale/runtime/generator.h"
#include "whale/tokenizer/chat_template.h"

namespace whale::cli {
namespace {

struct RunOptions {
  std::string model;
  FileLoad load = FileLoad::Auto;
  Activations activations = kDefaultActivations;
  std::string prompt;
  int n_predict = -1;  // -1: until EOS or the end of the context
  std::optional<float> temperature, top_p;
  std::optional<int> top_k;
  float min_p = 0.0f;
  float repeat_penalty = 1.0f, presence_penalty = 0.0f, frequency_penalty = 0.0f;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool chat = false;
  bool special = false;
  bool ignore_eos = false;
  int threads = 0;
  int context = 4096;
  std::string attention = "absorbed";
  bool verbose = false;
};

// Sampling defaults: generation_config.json of the model where it has them, else R1's recommendation
// (temperature 0.6, top-p 0.95; deepseek-spec §5.2).
SamplingParams sampling_params(const RunOptions& opt) {
  SamplingParams p;
  p.temperature = 0.6f;
  p.top_p = 0.95f;
  std::ifstream in(std::filesystem::path(opt.model) / "generation_config.json");
  if (in) {
    try {
      const nlohmann::json g = nlohmann::json::parse(in);
      if (g.contains("temperature") && g["temperature"].is_number()) p.temperature = g["temperature"].get<float>();
      if (g.contains("top_p") && g["top_p"].is_number()) p.top_p = g["top_p"].get<float>();
      if (g.contains("top_k") && g["top_k"].is_number_integer()) p.top_k = g["top_k"].get<int>();
      if (g.value("do_sample", true) == false) p.temperature = 0.0f;
    } catch (const nlohmann::json::exception& e) {
      fail("{}/generation_config.json: not valid JSON: {}", opt.model, e.what());
    }
  }
  if (opt.temperature) p.temperature = *opt.temperature;
  if (opt.top_p) p.top_p = *opt.top_p;
  if (opt.top_k) p.top_k = *opt.top_k;
  p.min_p = opt.min_p;
  p.repetition_penalty = opt.repeat_penalty;
  p.presence_penalty = opt.presence_penalty;
  p.frequency_penalty = opt.frequency_penalty;
  p.seed = opt.seed ? *opt.seed : std::random_device{}();
  return p;
}

void run_generate(const RunOptions& opt) {
  ProgressBar bar("loading " + opt.model);
  const Model model(opt.model, [&](int done, int total) { bar.update(done, total); }, opt.load, opt.activations);
  bar.finish();
  const Tokenizer tokenizer = Tokenizer::load(opt.model);
  const SamplingParams params = sampling_params(opt);
  Sampler sampler(params);

  std::vector<int32_t> prompt;
  if (opt.chat) {
    if (tokenizer.chat_template().empty()) fail("{}/tokenizer_config.json: no \"chat_template\" for --chat", opt.model);
    const nlohmann::ordered_json messages = nlohmann::ordered_json::array({{{"role", "user"}, {"content", opt.prompt}}});
    const std::string text = with_context(opt.model + "/tokenizer_config.json", [&] {
      return ChatTemplate::parse(tokenizer.chat_template())
          .render_chat(messages, true, tokenizer.bos_token(), tokenizer.eos_token());
    });
    prompt = tokenizer.encode(text, false);  // the template writes BOS itself, as apply_chat_template does
  } else {
    prompt = tokenizer.encode(opt.prompt, true);
  }

  ThreadPool pool(opt.threads);
  Generator generator(model, tokenizer, pool, opt.context, parse_attention_form(opt.attention));
  GenerateOptions g;
  if (opt.n_predict >= 0) g.max_tokens = opt.n_predict;
  g.stop = opt.stop;
  g.ignore_eos = opt.ignore_eos;
  g.skip_special_tokens = !opt.special;
  const GenerationResult r = generator.generate(prompt, sampler, g, [](std::string_view piece) {
    write_stdout(piece);
    return true;
  });
  fmt::print(stderr, "\n[{} tokens, stopped: {}]\n", r.tokens.size(), finish_reason_name(r.finish));
  if (opt.verbose)
    fmt::print(stderr, "prompt {} tokens in {:.3f} s ({:.1f} tok/s); generated {} tokens in {:.3f} s ({:.1f} tok/s); seed {}\n",
               r.prompt_tokens, r.prefill_seconds, r.prompt_tokens / std::max(r.prefill_seconds, 1e-9),
               r.tokens.size(), r.decode_seconds, r.tokens.size() / std::max(r.decode_seconds, 1e-9), params.seed);
}

}  // namespace

Command register_run(CLI::App& root) {
  auto opt = std::make_shared<RunOptions>();
  CLI::App* app = root.add_subcommand("run", "Generate a continuation of a prompt, streamed to stdout");
  add_model_option_with_default(app, opt->model);
  add_load_option(app, opt->load);
  add_activations_option(app, opt->activations);
  app->add_option("-p,--prompt", opt->prompt, "The prompt text")->required();
  app->add_option("-n,--n-predict", opt->n_predict, "Most tokens to generate (default: until EOS or the end of the context)")
      ->check(at_least(0));
  app->add_option("--temp", opt->temperature, "Sampling temperature; 0 is greedy (default: generation_config.json, else 0.6)")
      ->check(CLI::Range(0.0, 100.0));
  app->add_option("--top-k", opt->top_k, "Keep only the K most likely tokens (0 = off)")->check(at_least(0));
  app->add_option("--top-p", opt->top_p, "Nucleus sampling: keep the smallest set with probability >= P (default 0.95)")
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--min-p", opt->min_p, "Drop tokens less likely than M times the most likely one (0 = off)")
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--repeat-penalty", opt->repeat_penalty, "Repetition penalty over the prompt and output (1 = off)");
  app->add_option("--presence-penalty", opt->presence_penalty, "OpenAI presence penalty, -2 to 2 (0 = off)");
  app->add_option("--frequency-penalty", opt->frequency_penalty, "OpenAI frequency penalty, -2 to 2 (0 = off)");
  app->add_option("--seed", opt->seed, "Random seed, for reproducible sampling (default: random, shown by --verbose)");
  app->add_option("--stop", opt->stop, "Stop before this string (repeatable)");
  app->add_flag("--chat", opt->chat, "Wrap the prompt in the model's chat template as one user turn");
  app->add_flag("--special", opt->special, "Print special tokens (such as BOS) instead of hiding them");
  app->add_flag("--ignore-eos", opt->ignore_eos, "Keep generating past the end-of-sequence token");
  app->add_option("--threads", opt->threads, "Worker threads (default: one per CPU)")->check(at_least(0));
  app->add_option("--ctx", opt->context, "Context length in tokens: prompt and output together (default 4096)")
      ->check(at_least(1));
  app->add_option("--attention", opt->attention, "MLA form: absorbed (default) or naive")
      ->check(CLI::IsMember({"absorbed", "naive"}));
  app->add_flag("--verbose", opt->verbose, "Report prefill and decode speed on stderr");
  return {app, [opt] {
            resolve_model(opt->model);
            run_generate(*opt);
          }};
}

}  // namespace whale::cli
