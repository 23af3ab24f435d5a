// whale's HTTP server: the OpenAI-compatible endpoints over a BatchEngine (cpp-httplib).
//
//   POST /v1/chat/completions, POST /v1/completions   (stream or not)
//   GET  /v1/models, GET /health, GET /metrics (Prometheus text)
//
// Errors are OpenAI error objects ({"error": {"message", "type", "param", "code"}}) with statuses 400 (malformed
// request), 401 (missing or wrong API key), 404 (unknown path or model), 413 (body over the limit), 422 (a value out
// of range), 429 (the queue is full) and 503 (shutting down).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "whale/runtime/batch_engine.h"
#include "whale/server/openai_api.h"

namespace httplib {
class Server;
}

namespace whale {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;                      // empty: no authentication
  size_t max_body_bytes = 8 << 20;          // larger request bodies get 413
  int http_threads = 32;                    // connections served at once
  int request_timeout_seconds = 600;        // a request still unanswered after this is cancelled
};

class HttpServer {
 public:
  HttpServer(BatchEngine& engine, ServedModel model, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port (port 0: any free port). Throws Error naming the address if it cannot.
  void bind();
  int port() const { return port_; }
  // Serves until stop() (from another thread or a signal handler's thread).
  void run();
  void stop();

 private:
  struct Counters;
  void routes();

  BatchEngine& engine_;
  ServedModel model_;
  ServerOptions options_;
  std::unique_ptr<httplib::Server> http_;
  std::unique_ptr<Counters> counters_;
  int port_ = 0;
};

}  // namespace whale
