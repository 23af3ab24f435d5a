// whale chat: an interactive conversation in the terminal. Answers stream as they are generated; R1-style reasoning
// (the text up to </think>) is dimmed on a terminal or hidden with --hide-thinking. The history is rendered by the
// model's chat template each turn, so reasoning is dropped from earlier turns exactly as the template does, and the
// latent cache is reused for the part of the prompt that did not change.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "whale/cli/command.h"
#include "whale/cli/progress.h"
#include "whale/core/error.h"
#include "whale/runtime/generator.h"
#include "whale/runtime/reasoning_splitter.h"
#include "whale/tokenizer/chat_template.h"

namespace whale::cli {
namespace {

// Set by the SIGINT handler, read by the generation callback. A signal handler can only reach static storage.
std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) { g_interrupted.store(true); }

struct ChatOptions {
  std::string model;
  FileLoad load = FileLoad::Auto;
  Activations activations = kDefaultActivations;
  std::string system;
  bool hide_thinking = false;
  std::optional<float> temperature;
  float top_p = 0.95f;
  std::optional<uint64_t> seed;
  bool ignore_eos = false;
  int threads = 0;
  int context = 4096;
  int max_tokens = -1;
};

constexpr const char* kHelp =
    "Commands: /clear starts a new conversation, /exit (or Ctrl-D) quits, /help shows this.\n"
    "End a line with \\ to continue the message on the next line. Ctrl-C stops an answer.\n";

void run_chat(const ChatOptions& opt) {
  const bool tty_out = ::isatty(STDOUT_FILENO);
  const bool tty_in = ::isatty(STDIN_FILENO);
  ProgressBar bar("loading " + opt.model);
  const Model model(opt.model, [&](int done, int total) { bar.update(done, total); }, opt.load, opt.activations);
  bar.finish();
  const Tokenizer tokenizer = Tokenizer::load(opt.model);
  if (tokenizer.chat_template().empty())
    fail("{}/tokenizer_config.json: no \"chat_template\"; whale chat needs one", opt.model);
  const ChatTemplate tpl = with_context(opt.model + "/tokenizer_config.json",
                                        [&] { return ChatTemplate::parse(tokenizer.chat_template()); });

  SamplingParams params;
  params.temperature = opt.temperature.value_or(0.6f);
  params.top_p = opt.top_p;
  params.seed = opt.seed ? *opt.seed : std::random_device{}();
  Sampler sampler(params);
  ThreadPool pool(opt.threads);
  Generator generator(model, tokenizer, pool, opt.context);

  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);

  auto fresh_history = [&] {
    nlohmann::ordered_json m = nlohmann::ordered_json::array();
    if (!opt.system.empty()) m.push_back({{"role", "system"}, {"content", opt.system}});
    return m;
  };
  nlohmann::ordered_json messages = fresh_history();
  const std::string dim = tty_out ? "\x1b[2m" : "", reset = tty_out ? "\x1b[0m" : "";
  if (tty_in) fmt::print(stderr, "whale chat: {}. {}", opt.model, kHelp);

  for (;;) {
    // Read one message; a trailing backslash continues it on the next line.
    std::string message, line;
    bool eof = false;
    for (bool first = true;; first = false) {
      if (tty_in) fmt::print(stdout, "{}", first ? "> " : ". ");
      std::fflush(stdout);
      g_interrupted.store(false);
      if (!std::getline(std::cin, line)) {
        if (g_interrupted.load()) {  // Ctrl-C at the prompt: drop the line
          std::cin.clear();
          fmt::print(stdout, "\n(Ctrl-C stops an answer; /exit quits)\n");
          message.clear();
          first = true;
          continue;
        }
        eof = true;
        break;
      }
      if (!line.empty() && line.back() == '\\') {
        message += line.substr(0, line.size() - 1) + "\n";
        continue;
      }
      message += line;
      break;
    }
    if (eof) break;
    if (message.empty()) continue;
    if (message == "/exit" || message == "/quit") break;
    if (message == "/help") {
      fmt::print(stdout, "{}", kHelp);
      continue;
    }
    if (message == "/clear") {
      messages = fresh_history();
      generator.reset();
      fmt::print(stdout, "(conversation cleared)\n");
      continue;
    }
    if (message[0] == '/' && message.find(' ') == std::string::npos && message.find('\n') == std::string::npos) {
      fmt::print(stdout, "unknown command {}; {}", message, kHelp);
      continue;
    }

    messages.push_back({{"role", "user"}, {"content", message}});
    const std::string prompt_text = tpl.render_chat(messages, true, tokenizer.bos_token(), tokenizer.eos_token());
    const std::vector<int32_t> prompt = tokenizer.encode(prompt_text, false);
    if (static_cast<int>(prompt.size()) >= opt.context - 1) {
      messages.erase(messages.end() - 1);
      fmt::print(stdout, "(the conversation is {} tokens and the context holds {}: /clear to start over, or "
                 "restart with a larger --ctx)\n", prompt.size(), opt.context);
      continue;
    }

    ReasoningSplitter splitter(prompt_text.ends_with("<think>\n") || prompt_text.ends_with("<think>"));
    auto show = [&](std::string_view text, bool thinking) {
      if (text.empty() || (thinking && opt.hide_thinking)) return;
      if (thinking) fmt::print(stdout, "{}{}{}", dim, text, reset);
      else fmt::print(stdout, "{}", text);
      std::fflush(stdout);
    };
    GenerateOptions g;
    if (opt.max_tokens >= 0) g.max_tokens = opt.max_tokens;
    g.ignore_eos = opt.ignore_eos;
    g_interrupted.store(false);
    const GenerationResult r = generator.generate(prompt, sampler, g, [&](std::string_view piece) {
      splitter.push(piece, show);
      return !g_interrupted.load();
    });
    splitter.finish(show);
    messages.push_back({{"role", "assistant"}, {"content", r.text}});
    const double tps = r.tokens.size() / std::max(r.decode_seconds, 1e-9);
    std::string note;
    if (r.finish == FinishReason::Cancelled) note = ", stopped by Ctrl-C";
    else if (r.finish == FinishReason::Context) note = ", the context is full: /clear to start over";
    else if (r.finish == FinishReason::Length) note = ", token limit";
    fmt::print(stdout, "\n{}[{} tokens, {:.1f} tok/s{}]{}\n", dim, r.tokens.size(), tps, note, reset);
  }
  if (tty_in) fmt::print(stdout, "\n");
}

}  // namespace

Command register_chat(CLI::App& root) {
  auto opt = std::make_shared<ChatOptions>();
  CLI::App* app = root.add_subcommand("chat", "Talk with a model in the terminal (/help for commands)");
  add_model_option_with_default(app, opt->model);
  add_load_option(app, opt->load);
  add_activations_option(app, opt->activations);
  app->add_option("--system", opt->system, "A system prompt for the conversation");
  app->add_flag("--hide-thinking", opt->hide_thinking, "Hide the reasoning before </think> instead of dimming it");
  app->add_option("--temp", opt->temperature, "Sampling temperature; 0 is greedy (default 0.6)")
      ->check(CLI::Range(0.0, 100.0));
  app->add_option("--top-p", opt->top_p, "Nucleus sampling threshold (default 0.95)")->check(CLI::Range(0.0, 1.0));
  app->add_option("--seed", opt->seed, "Random seed (default: random)");
  app->add_option("-n,--n-predict", opt->max_tokens, "Most tokens per answer (default: until EOS or the context ends)")
      ->check(at_least(0));
  app->add_flag("--ignore-eos", opt->ignore_eos, "Keep generating past the end-of-sequence token");
  app->add_option("--threads", opt->threads, "Worker threads (default: one per CPU)")->check(at_least(0));
  app->add_option("--ctx", opt->context, "Context length in tokens (default 4096)")->check(at_least(2));
  return {app, [opt] {
            resolve_model(opt->model);
            run_chat(*opt);
          }};
}

}  // namespace whale::cli
