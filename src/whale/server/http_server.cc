#include "whale/server/http_server.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>

#include <httplib.h>
#include <fmt/format.h>

#include "whale/core/error.h"
#include "whale/runtime/reasoning_splitter.h"

namespace whale {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// JSON text; invalid UTF-8 (a token that is part of a character) becomes U+FFFD instead of an exception.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(api_error_body(e), "application/json");
}

ApiError error_of(int status, std::string message, std::string type = "invalid_request_error") {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  e.type = std::move(type);
  return e;
}

// One engine event for one choice of a request.
struct Event {
  int choice = 0;
  std::string text;
  std::optional<SampledToken> token;
  bool done = false;
  SequenceOutcome outcome;
};

// A request's n sequences and the events they produce, from the engine's thread to the handler's.
struct Exchange {
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<Event> events;
  int running = 0;
  std::vector<std::shared_ptr<SequenceRequest>> sequences;

  void push(Event e) {
    {
      std::lock_guard lock(mutex);
      if (e.done) --running;
      events.push_back(std::move(e));
    }
    ready.notify_all();
  }
  // Waits up to `wait` for events; returns those queued.
  std::deque<Event> take(std::chrono::milliseconds wait) {
    std::unique_lock lock(mutex);
    ready.wait_for(lock, wait, [&] { return !events.empty(); });
    std::deque<Event> out;
    out.swap(events);
    return out;
  }
  void cancel() {
    for (auto& s : sequences) s->cancelled->store(true);
  }
  // Every sequence has ended and its events have been taken.
  bool finished() {
    std::lock_guard lock(mutex);
    return running == 0 && events.empty();
  }
};

// What one choice has produced so far, and how to turn its events into the API's objects.
struct Choice {
  std::optional<ReasoningSplitter> splitter;  // chat with reasoning
  std::string content, reasoning;
  int reasoning_tokens = 0;
  json logprobs_content = json::array();  // chat
  json completion_logprobs = {{"tokens", json::array()}, {"token_logprobs", json::array()},
                              {"top_logprobs", json::array()}, {"text_offset", json::array()}};
  size_t text_offset = 0;
  SequenceOutcome outcome;

  // Splits text into (reasoning, content) deltas.
  std::pair<std::string, std::string> split(std::string_view text, bool finish) {
    std::string r, c;
    auto out = [&](std::string_view t, bool thinking) { (thinking ? r : c) += t; };
    if (splitter) {
      splitter->push(text, out);
      if (finish) splitter->finish(out);
    } else {
      c += text;
    }
    // The reasoning's closing tag is not part of it (DeepSeek's API leaves it out too).
    if (const size_t at = r.find("</think>"); at != std::string::npos) r.erase(at, 8);
    // The answer after </think> begins with blank lines; drop them before its first visible text.
    if (splitter && content.empty()) c.erase(0, std::min(c.size(), c.find_first_not_of("\n")));
    reasoning += r;
    content += c;
    return {r, c};
  }
};

json token_logprob(const Tokenizer& tok, int32_t id, float logprob) {
  const std::string bytes = tok.token_bytes(id);
  json b = json::array();
  for (unsigned char ch : bytes) b.push_back(static_cast<int>(ch));
  return {{"token", bytes}, {"logprob", logprob}, {"bytes", b}};
}

}  // namespace

struct HttpServer::Counters {
  std::mutex mutex;
  std::map<std::string, uint64_t> requests;  // "endpoint status" -> count
  uint64_t rejected_queue_full = 0;
  void count(const std::string& endpoint, int status) {
    std::lock_guard lock(mutex);
    ++requests[fmt::format("{}\t{}", endpoint, status)];
  }
};

HttpServer::HttpServer(BatchEngine& engine, ServedModel model, ServerOptions options)
    : engine_(engine),
      model_(std::move(model)),
      options_(std::move(options)),
      http_(std::make_unique<httplib::Server>()),
      counters_(std::make_unique<Counters>()) {
  routes();
}

HttpServer::~HttpServer() = default;

void HttpServer::bind() {
  const int threads = options_.http_threads;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http_->set_payload_max_length(options_.max_body_bytes);
  http_->set_read_timeout(30, 0);
  http_->set_write_timeout(30, 0);
  if (options_.port == 0) {
    port_ = http_->bind_to_any_port(options_.host);
    if (port_ < 0) fail("cannot bind {}: no free port", options_.host);
  } else {
    if (!http_->bind_to_port(options_.host, options_.port))
      fail("cannot bind {}:{} (in use, or not an address of this machine)", options_.host, options_.port);
    port_ = options_.port;
  }
}

void HttpServer::run() { http_->listen_after_bind(); }

void HttpServer::stop() { http_->stop(); }

void HttpServer::routes() {
  httplib::Server& s = *http_;
  // An error answer, counted in /metrics under its endpoint.
  auto reply_error = [this](httplib::Response& res, const std::string& endpoint, const ApiError& e) {
    send_error(res, e);
    counters_->count(endpoint, e.status);
  };

  // The API key, for every /v1 path; /health and /metrics stay open for probes.
  s.set_pre_routing_handler([this, reply_error](const httplib::Request& req, httplib::Response& res) {
    if (options_.api_key.empty() || !req.path.starts_with("/v1/")) return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    if (auth == "Bearer " + options_.api_key) return httplib::Server::HandlerResponse::Unhandled;
    ApiError e = error_of(401, auth.empty() ? "missing API key: send 'Authorization: Bearer KEY'" : "invalid API key",
                          "authentication_error");
    e.code = "invalid_api_key";
    reply_error(res, req.path, e);
    return httplib::Server::HandlerResponse::Handled;
  });

  // Statuses httplib sets itself (404 for an unknown path, 413 for a body over the limit, 400 for a bad request
  // line) get an OpenAI error object too.
  s.set_error_handler([this, reply_error](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = fmt::format("HTTP {}", res.status);
    if (res.status == 404) message = fmt::format("no such endpoint: {} {}", req.method, req.path);
    if (res.status == 413) message = fmt::format("the request body is over the limit of {} bytes", options_.max_body_bytes);
    if (res.status == 405) message = fmt::format("{} is not allowed on {}", req.method, req.path);
    reply_error(res, req.path, error_of(res.status, message));
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, error_of(500, what, "server_error"));
  });

  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const EngineStats st = engine_.stats();
    res.set_content(dump({{"status", "ok"}, {"model", model_.id}, {"active", st.active}, {"queued", st.queue_depth}}),
                    "application/json");
  });

  const json model_object = {{"id", model_.id}, {"object", "model"}, {"created", 0}, {"owned_by", "whale"}};
  s.Get("/v1/models", [this, model_object](const httplib::Request& req, httplib::Response& res) {
    res.set_content(dump({{"object", "list"}, {"data", json::array({model_object})}}), "application/json");
    counters_->count(req.path, 200);
  });
  s.Get(R"(/v1/models/(.+))", [this, model_object, reply_error](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != model_.id)
      return reply_error(res, "/v1/models", error_of(404, fmt::format("the model '{}' does not exist", req.matches[1].str())));
    res.set_content(dump(model_object), "application/json");
    counters_->count("/v1/models", 200);
  });

  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    const EngineStats st = engine_.stats();
    std::string out;
    auto metric = [&](const char* name, const char* type, const char* help, const std::string& value) {
      out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
    };
    out += "# HELP whale_requests_total HTTP requests answered, by endpoint and status.\n";
    out += "# TYPE whale_requests_total counter\n";
    {
      std::lock_guard lock(counters_->mutex);
      for (const auto& [key, n] : counters_->requests) {
        const size_t tab = key.find('\t');
        out += fmt::format("whale_requests_total{{endpoint=\"{}\",status=\"{}\"}} {}\n", key.substr(0, tab),
                           key.substr(tab + 1), n);
      }
    }
    metric("whale_sequences_started_total", "counter", "Sequences admitted into a slot.", std::to_string(st.sequences_started));
    metric("whale_sequences_cancelled_total", "counter", "Sequences cancelled (client gone, timeout, error).",
           std::to_string(st.sequences_cancelled));
    metric("whale_prompt_tokens_total", "counter", "Prompt tokens of admitted sequences.", std::to_string(st.prompt_tokens));
    metric("whale_prefix_cache_hit_tokens_total", "counter", "Prompt tokens found already computed (a slot's cache, shared pages).",
           std::to_string(st.cached_prompt_tokens));
    metric("whale_prefix_cache_hit_ratio", "gauge", "Cached prompt tokens / prompt tokens, since start.",
           fmt::format("{:.6f}", st.prompt_tokens ? static_cast<double>(st.cached_prompt_tokens) / st.prompt_tokens : 0.0));
    metric("whale_prefix_cache_tokens", "gauge", "Tokens held by the pages kept for reuse across requests.",
           std::to_string(st.prefix_cache_tokens));
    metric("whale_completion_tokens_total", "counter", "Tokens generated.", std::to_string(st.completion_tokens));
    metric("whale_queue_depth", "gauge", "Sequences waiting for a slot.", std::to_string(st.queue_depth));
    metric("whale_active_sequences", "gauge", "Slots running a sequence.", std::to_string(st.active));
    metric("whale_batch_size", "gauge", "Sequences in the last batched step.", std::to_string(st.last_batch));
    metric("whale_steps_total", "counter", "Batched steps run.", std::to_string(st.steps));
    metric("whale_step_tokens_total", "counter", "Tokens run through the model in steps.", std::to_string(st.step_tokens));
    metric("whale_busy_seconds_total", "counter", "Time spent in batched steps.", fmt::format("{:.6f}", st.busy_seconds));
    metric("whale_tokens_per_second", "gauge", "Tokens run through the model per busy second, since start.",
           fmt::format("{:.3f}", st.busy_seconds > 0 ? st.step_tokens / st.busy_seconds : 0.0));
    {
      std::lock_guard lock(counters_->mutex);
      metric("whale_rejected_queue_full_total", "counter", "Requests answered 429 because the queue was full.",
             std::to_string(counters_->rejected_queue_full));
    }
    res.set_content(out, "text/plain; version=0.0.4");
  });

  auto completion = [this, reply_error](bool chat) {
    return [this, chat, reply_error](const httplib::Request& req, httplib::Response& res) {
      const std::string endpoint = chat ? "/v1/chat/completions" : "/v1/completions";
      CompletionRequest cr;
      try {
        cr = parse_completion_request(req.body, chat, model_);
      } catch (const ApiError& e) {
        return reply_error(res, endpoint, e);
      }

      auto ex = std::make_shared<Exchange>();
      ex->running = cr.n;
      for (int i = 0; i < cr.n; ++i) {
        auto seq = std::make_shared<SequenceRequest>();
        seq->prompt = cr.prompt;
        seq->sampling = cr.sampling;
        seq->sampling.seed = cr.sampling.seed + static_cast<uint64_t>(i);
        seq->options = cr.options;
        std::weak_ptr<Exchange> weak = ex;
        seq->on_token = [weak, i](std::string_view text, const SampledToken& token) {
          auto e = weak.lock();
          if (!e) return false;
          Event ev;
          ev.choice = i;
          ev.text = std::string(text);
          ev.token = token;
          e->push(std::move(ev));
          return true;
        };
        seq->on_done = [weak, i](std::string_view tail, const SequenceOutcome& outcome) {
          if (auto e = weak.lock()) {
            Event ev;
            ev.choice = i;
            ev.text = std::string(tail);
            ev.done = true;
            ev.outcome = outcome;
            e->push(std::move(ev));
          }
        };
        ex->sequences.push_back(seq);
      }
      for (size_t i = 0; i < ex->sequences.size(); ++i) {
        bool queued = false;
        try {
          queued = engine_.submit(ex->sequences[i]);
        } catch (const Error& e) {
          ex->cancel();
          return reply_error(res, endpoint, error_of(422, e.what()));
        }
        if (!queued) {
          ex->cancel();
          ApiError e = error_of(429, "the server is busy: its request queue is full; retry later", "rate_limit_error");
          e.code = "queue_full";
          reply_error(res, endpoint, e);
          std::lock_guard lock(counters_->mutex);
          ++counters_->rejected_queue_full;
          return;
        }
      }

      const std::string id = fmt::format("{}-{:016x}", chat ? "chatcmpl" : "cmpl", cr.sampling.seed ^ reinterpret_cast<uintptr_t>(ex.get()));
      const int64_t created = std::chrono::duration_cast<std::chrono::seconds>(
                                  std::chrono::system_clock::now().time_since_epoch()).count();
      // The object around choices: a stream chunk (chat.completion.chunk / text_completion), which the non-streamed
      // chat answer renames.
      auto envelope = [id, created, model = model_.id, chat](json choices) -> json {
        return {{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
                {"model", model}, {"choices", std::move(choices)}};
      };
      auto choices = std::make_shared<std::vector<Choice>>(static_cast<size_t>(cr.n));
      for (Choice& c : *choices)
        if (chat && cr.reasoning) c.splitter.emplace(true);
      const auto deadline = Clock::now() + std::chrono::seconds(options_.request_timeout_seconds);
      // A request cut off by --timeout ends as one cut off by max_tokens: finish_reason "length" (truncated by a
      // limit), not the "stop" of a finished answer.
      auto timed_out = std::make_shared<std::atomic<bool>>(false);
      auto finish_reason = [timed_out](const SequenceOutcome& o) {
        return o.finish == FinishReason::Cancelled && timed_out->load() ? "length" : openai_finish_reason(o.finish);
      };
      auto check_deadline = [ex, timed_out, deadline] {
        if (Clock::now() <= deadline) return;
        timed_out->store(true);
        ex->cancel();
      };

      // Applies one event to its choice; returns the stream chunk for it (null when there is nothing to send).
      auto crp = std::make_shared<const CompletionRequest>(cr);
      auto apply = [chat, crp, choices, tokp = model_.tokenizer, envelope, finish_reason](const Event& ev) -> json {
        const CompletionRequest& cr = *crp;
        const Tokenizer& tok = *tokp;
        Choice& c = (*choices)[static_cast<size_t>(ev.choice)];
        const bool was_thinking = c.splitter && c.splitter->thinking();
        auto [r, t] = c.split(ev.text, ev.done);
        json lp = nullptr;
        if (ev.token) {
          if (was_thinking) ++c.reasoning_tokens;
          if (cr.logprobs) {
            json entry = token_logprob(tok, ev.token->id, ev.token->logprob);
            json top = json::array();
            for (const TokenLogprob& a : ev.token->top) top.push_back(token_logprob(tok, a.id, a.logprob));
            if (chat) {
              entry["top_logprobs"] = top;
              c.logprobs_content.push_back(entry);
              lp = {{"content", json::array({entry})}};
            } else {
              json alts = json::object();
              for (const TokenLogprob& a : ev.token->top) alts[tok.token_bytes(a.id)] = a.logprob;
              auto& L = c.completion_logprobs;
              L["tokens"].push_back(entry["token"]);
              L["token_logprobs"].push_back(ev.token->logprob);
              L["top_logprobs"].push_back(alts);
              L["text_offset"].push_back(c.text_offset);
              lp = {{"tokens", json::array({entry["token"]})}, {"token_logprobs", json::array({ev.token->logprob})},
                    {"top_logprobs", json::array({alts})}, {"text_offset", json::array({c.text_offset})}};
            }
          }
        }
        c.text_offset += t.size();
        if (ev.done) c.outcome = ev.outcome;
        if (ev.done && !ev.outcome.error.empty())  // the sequence failed: an error event in the stream
          return api_error_object(error_of(500, ev.outcome.error, "server_error"));
        if (r.empty() && t.empty() && lp.is_null() && !ev.done) return nullptr;
        json choice;
        if (chat) {
          json delta = json::object();
          if (!t.empty()) delta["content"] = t;
          if (!r.empty()) delta["reasoning_content"] = r;
          choice = {{"index", ev.choice}, {"delta", delta}, {"logprobs", lp}, {"finish_reason", nullptr}};
        } else {
          choice = {{"index", ev.choice}, {"text", t}, {"logprobs", lp}, {"finish_reason", nullptr}};
        }
        if (ev.done) choice["finish_reason"] = finish_reason(ev.outcome);
        return envelope(json::array({choice}));
      };
      auto usage = [crp, choices] {
        const CompletionRequest& cr = *crp;
        int completion = 0, reasoning = 0, cached = static_cast<int>(cr.prompt.size());
        for (const Choice& c : *choices) {
          completion += c.outcome.completion_tokens;
          reasoning += c.reasoning_tokens;
          cached = std::min(cached, c.outcome.cached_tokens);
        }
        const int prompt = static_cast<int>(cr.prompt.size());
        json u = {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion},
                  {"prompt_tokens_details", {{"cached_tokens", cached}}}};
        if (cr.chat) u["completion_tokens_details"] = {{"reasoning_tokens", reasoning}};
        return u;
      };
      auto failed = [choices]() -> std::string {
        for (const Choice& c : *choices)
          if (!c.outcome.error.empty()) return c.outcome.error;
        return {};
      };

      if (!cr.stream) {
        for (;;) {
          for (const Event& ev : ex->take(std::chrono::milliseconds(200))) apply(ev);
          if (ex->finished()) break;
          check_deadline();
        }
        if (const std::string err = failed(); !err.empty())
          return reply_error(res, endpoint, error_of(500, err, "server_error"));
        json out_choices = json::array();
        for (size_t i = 0; i < choices->size(); ++i) {
          const Choice& c = (*choices)[i];
          json ch;
          if (chat) {
            json msg = {{"role", "assistant"}, {"content", c.content}};
            if (c.splitter) msg["reasoning_content"] = c.reasoning;
            ch = {{"index", i}, {"message", msg},
                  {"logprobs", cr.logprobs ? json{{"content", c.logprobs_content}} : json(nullptr)}};
          } else {
            ch = {{"index", i}, {"text", c.content}, {"logprobs", cr.logprobs ? c.completion_logprobs : json(nullptr)}};
          }
          ch["finish_reason"] = finish_reason(c.outcome);
          out_choices.push_back(ch);
        }
        json body = envelope(out_choices);
        if (chat) body["object"] = "chat.completion";
        body["usage"] = usage();
        res.set_content(dump(body), "application/json");
        counters_->count(endpoint, 200);
        return;
      }

      // Streaming: server-sent events, one chunk per piece, then the usage chunk if asked, then [DONE].
      counters_->count(endpoint, 200);
      auto started = std::make_shared<bool>(false);
      res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider(
          "text/event-stream",
          [ex, apply, usage, envelope, chat, crp, started, check_deadline](size_t, httplib::DataSink& sink) {
            const CompletionRequest& cr = *crp;
            auto send = [&](const json& chunk) {
              const std::string line = "data: " + dump(chunk) + "\n\n";
              return sink.write(line.data(), line.size());
            };
            if (!*started) {
              *started = true;
              if (chat)
                for (int i = 0; i < cr.n; ++i) {
                  const json choice = {{"index", i}, {"delta", {{"role", "assistant"}, {"content", ""}}},
                                       {"logprobs", nullptr}, {"finish_reason", nullptr}};
                  if (!send(envelope(json::array({choice})))) {
                    ex->cancel();
                    return false;
                  }
                }
            }
            for (const Event& ev : ex->take(std::chrono::milliseconds(100))) {
              const json chunk = apply(ev);
              if (!chunk.is_null() && !send(chunk)) {
                ex->cancel();
                return false;
              }
            }
            if (!sink.is_writable()) {  // the client went away
              ex->cancel();
              return false;
            }
            check_deadline();
            if (!ex->finished()) return true;
            if (cr.include_usage) {
              json chunk = envelope(json::array());
              chunk["usage"] = usage();
              if (!send(chunk)) return false;
            }
            const std::string done = "data: [DONE]\n\n";
            sink.write(done.data(), done.size());
            sink.done();
            return true;
          },
          [ex](bool) { ex->cancel(); });  // the connection ended: cancel whatever still runs
    };
  };
  s.Post("/v1/chat/completions", completion(true));
  s.Post("/v1/completions", completion(false));
}

}  // namespace whale
