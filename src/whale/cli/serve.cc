// whale serve: the OpenAI-compatible HTTP server (server/http_server.h) over a continuous-batching engine
// (runtime/batch_engine.h). Stops cleanly on SIGINT or SIGTERM.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "whale/cli/command.h"
#include "whale/cli/progress.h"
#include "whale/core/error.h"
#include "whale/runtime/batch_engine.h"
#include "whale/server/http_server.h"
#include "whale/tokenizer/chat_template.h"

namespace whale::cli {
namespace {

struct ServeOptions {
  std::string model;
  FileLoad load = FileLoad::Auto;
  Activations activations = kDefaultActivations;
  std::string name;
  std::string host = "127.0.0.1";
  int port = 8080;
  int parallel = 4;
  int context = 4096;
  int prefill_chunk = 256;
  int max_queue = 64;
  int prefix_cache = 8192;
  int threads = 0;
  int timeout = 600;
  size_t max_body = 8 << 20;
  std::string api_key;
};

void run_serve(const ServeOptions& opt) {
  // SIGINT and SIGTERM go to one watcher thread (blocked everywhere else: every thread started below inherits the
  // mask), which stops the server; the engine then cancels what runs.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A client that hangs up makes a later write fail with EPIPE, handled there; the signal must not end the server.
  signal(SIGPIPE, SIG_IGN);

  ProgressBar bar("loading " + opt.model);
  const Model model(opt.model, [&](int done, int total) { bar.update(done, total); }, opt.load, opt.activations);
  bar.finish();
  const Tokenizer tokenizer = Tokenizer::load(opt.model);
  std::optional<ChatTemplate> tpl;
  if (!tokenizer.chat_template().empty())
    tpl.emplace(with_context(opt.model + "/tokenizer_config.json",
                             [&] { return ChatTemplate::parse(tokenizer.chat_template()); }));
  const int max_ctx = model.config().max_position_embeddings;
  if (max_ctx > 0 && opt.context > max_ctx)
    fail("--ctx {} exceeds the model's max_position_embeddings ({})", opt.context, max_ctx);

  ThreadPool pool(opt.threads);
  EngineOptions eo;
  eo.slots = opt.parallel;
  eo.context = opt.context;
  eo.prefix_cache_tokens = opt.prefix_cache;
  eo.prefill_chunk = opt.prefill_chunk;
  eo.max_queue = opt.max_queue;
  BatchEngine engine(model, tokenizer, pool, eo);

  ServedModel served;
  served.id = opt.name.empty() ? std::filesystem::path(opt.model).lexically_normal().filename().string() : opt.name;
  if (served.id.empty()) served.id = std::filesystem::path(opt.model).lexically_normal().parent_path().filename().string();
  served.tokenizer = &tokenizer;
  served.chat_template = tpl ? &*tpl : nullptr;
  served.context = opt.context;
  ServerOptions so;
  so.host = opt.host;
  so.port = opt.port;
  so.api_key = opt.api_key;
  so.max_body_bytes = opt.max_body;
  so.request_timeout_seconds = opt.timeout;
  HttpServer server(engine, served, so);
  server.bind();

  std::thread watcher([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    fmt::print(stderr, "whale serve: {} received, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server.stop();
  });
  fmt::print(stderr, "whale serve: model '{}' on http://{}:{} ({} slots of {} tokens, {} threads{})\n", served.id,
             opt.host, server.port(), opt.parallel, opt.context, pool.size(),
             opt.api_key.empty() ? "" : ", API key required");
  std::fflush(stderr);
  server.run();
  // Stopped by a signal, or the listener failed: make sure the watcher ends either way.
  pthread_kill(watcher.native_handle(), SIGTERM);
  watcher.join();
}

}  // namespace

Command register_serve(CLI::App& root) {
  auto opt = std::make_shared<ServeOptions>();
  CLI::App* app = root.add_subcommand(
      "serve", "Serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models, "
               "/health, /metrics)");
  app->add_option("--model", opt->model, "Model directory (config.json, safetensors, tokenizer files)")->required();
  add_load_option(app, opt->load);
  add_activations_option(app, opt->activations);
  app->add_option("--name", opt->name, "The model id clients send and /v1/models lists (default: the directory's name)");
  app->add_option("--host", opt->host, "Address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: all)");
  app->add_option("--port", opt->port, "Port to listen on (default 8080; 0 picks a free one)")
      ->check(CLI::Range(0, 65535));
  app->add_option("--parallel", opt->parallel,
                  "Sequences decoded together, each with its own latent cache of up to --ctx tokens (default 4)")
      ->check(at_least(1));
  app->add_option("--ctx", opt->context, "Context per sequence in tokens, prompt and completion (default 4096)")
      ->check(at_least(2));
  app->add_option("--prefill-chunk", opt->prefill_chunk,
                  "Most prompt tokens per batched step, so that long prompts do not stall decoding (default 256)")
      ->check(at_least(1));
  app->add_option("--max-queue", opt->max_queue,
                  "Requests waiting for a free sequence slot; beyond this the server answers 429 (default 64)")
      ->check(at_least(0));
  app->add_option("--prefix-cache", opt->prefix_cache,
                  "Prompt tokens kept computed for reuse by later requests in any slot, in whole pages of 64 (a "
                  "repeated system prompt is computed once); 0 keeps only each slot's own last sequence (default 8192)")
      ->check(at_least(0));
  app->add_option("--timeout", opt->timeout,
                  "Seconds after which an unfinished request is cut off where it is and answered with finish_reason "
                  "\"length\", as max_tokens would (default 600)")
      ->check(at_least(1));
  app->add_option("--max-body", opt->max_body, "Largest request body in bytes; larger ones get 413 (default 8 MiB)")
      ->check(at_least(1));
  app->add_option("--api-key", opt->api_key,
                  "Require 'Authorization: Bearer KEY' on /v1/* (default: no key; also read from WHALE_API_KEY)")
      ->envname("WHALE_API_KEY");
  app->add_option("--threads", opt->threads, "Worker threads for the model (default: one per CPU)")->check(at_least(0));
  return {app, [opt] { run_serve(*opt); }};
}

}  // namespace whale::cli
