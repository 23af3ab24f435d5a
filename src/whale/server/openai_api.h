// The OpenAI API's request and response bodies (https://platform.openai.com/docs/api-reference/chat and
// /completions), in whale's terms: a request is parsed and validated into a CompletionRequest (engine sequences),
// and the engine's output is written back as chat.completion / text_completion objects or their stream chunks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "whale/runtime/batch_engine.h"
#include "whale/tokenizer/chat_template.h"
#include "whale/tokenizer/tokenizer.h"

namespace whale {

// An error to return to the client: HTTP status and an OpenAI error object {"error": {message, type, param, code}}.
struct ApiError {
  int status = 400;
  std::string message;
  std::string param;                          // the offending field, when there is one
  std::string type = "invalid_request_error";
  std::string code;
};

// The error object, {"error": {message, type, param, code}}, and its JSON text.
nlohmann::json api_error_object(const ApiError& e);
std::string api_error_body(const ApiError& e);

struct CompletionRequest {
  bool chat = true;
  std::string model;
  std::vector<int32_t> prompt;
  bool reasoning = false;  // chat: the prompt opens <think>, so the output starts with reasoning
  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  SamplingParams sampling;
  GenerateOptions options;
  bool logprobs = false;  // report the chosen tokens' log-probabilities (and top_logprobs alternatives)
};

// What the parser needs to know about the served model.
struct ServedModel {
  std::string id;  // the name clients use ("model" field); other names are 404
  const Tokenizer* tokenizer = nullptr;
  const ChatTemplate* chat_template = nullptr;  // null: /v1/chat/completions answers 400
  int context = 0;                              // tokens per sequence
};

// Parses and validates a /v1/chat/completions (chat = true) or /v1/completions body. Throws ApiError: 400 for
// malformed JSON, a missing field, a field of the wrong type or an unknown field; 404 for another model; 422 for a
// value out of range or a prompt that does not fit the context.
CompletionRequest parse_completion_request(const std::string& body, bool chat, const ServedModel& model);

// finish_reason of the OpenAI API: "stop" (EOS or a stop string) or "length" (max_tokens or the context).
const char* openai_finish_reason(FinishReason r);

}  // namespace whale
