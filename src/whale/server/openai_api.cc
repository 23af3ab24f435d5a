#include "whale/server/openai_api.h"

#include <random>
#include <set>

#include <fmt/format.h>

#include "whale/core/error.h"

namespace whale {
namespace {

using json = nlohmann::json;

[[noreturn]] void bad(int status, const std::string& param, const std::string& message, const std::string& code = {}) {
  ApiError e;
  e.status = status;
  e.param = param;
  e.message = message;
  e.code = code;
  throw e;
}

std::string type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

bool get_bool(const json& body, const char* name, bool fallback) {
  const json* v = field(body, name);
  if (!v) return fallback;
  if (!v->is_boolean()) bad(400, name, fmt::format("'{}' must be a boolean, not {}", name, type_name(*v)));
  return v->get<bool>();
}

std::optional<int64_t> get_int(const json& body, const char* name, int64_t lo, int64_t hi) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) bad(400, name, fmt::format("'{}' must be an integer, not {}", name, type_name(*v)));
  const int64_t x = v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                        ? INT64_MAX
                        : v->get<int64_t>();
  if (x < lo || x > hi) bad(422, name, fmt::format("'{}' = {} is out of range [{}, {}]", name, x, lo, hi));
  return x;
}

std::optional<double> get_number(const json& body, const char* name, double lo, double hi) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) bad(400, name, fmt::format("'{}' must be a number, not {}", name, type_name(*v)));
  const double x = v->get<double>();
  if (!(x >= lo && x <= hi)) bad(422, name, fmt::format("'{}' = {} is out of range [{}, {}]", name, x, lo, hi));
  return x;
}

// A message's content as text: a string, or an array of {"type": "text", "text": ...} parts.
std::string message_text(const json& content, size_t index) {
  const std::string where = fmt::format("messages[{}].content", index);
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) bad(400, where, fmt::format("'{}' must be a string or an array of parts", where));
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string p = fmt::format("{}[{}]", where, i);
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
      bad(400, p, fmt::format("'{}' must be an object with a string 'type'", p));
    if (part["type"] != "text") bad(400, p, fmt::format("'{}': only text parts are supported", p));
    if (!part.contains("text") || !part["text"].is_string()) bad(400, p, fmt::format("'{}.text' must be a string", p));
    text += part["text"].get<std::string>();
  }
  return text;
}

std::vector<std::string> get_stop(const json& body) {
  const json* v = field(body, "stop");
  if (!v) return {};
  if (v->is_string()) return {v->get<std::string>()};
  if (!v->is_array()) bad(400, "stop", "'stop' must be a string or an array of strings");
  if (v->size() > 4) bad(422, "stop", fmt::format("'stop' has {} strings; at most 4 are allowed", v->size()));
  std::vector<std::string> stops;
  for (const json& s : *v) {
    if (!s.is_string()) bad(400, "stop", "'stop' must be a string or an array of strings");
    if (s.get<std::string>().empty()) bad(422, "stop", "'stop' strings must not be empty");
    stops.push_back(s.get<std::string>());
  }
  return stops;
}

// Tokenizer errors (text it cannot take) are the client's: 400 naming the field.
std::vector<int32_t> encode(const Tokenizer& tok, const std::string& text, bool special, const char* field) {
  try {
    return tok.encode(text, special);
  } catch (const Error& e) {
    bad(400, field, fmt::format("'{}' cannot be tokenized: {}", field, e.what()));
  }
}

const std::set<std::string>& known_fields(bool chat) {
  static const std::set<std::string> common = {
      "model", "n", "stream", "stream_options", "max_tokens", "temperature", "top_p", "seed", "stop", "logprobs",
      "frequency_penalty", "presence_penalty", "user"};
  static const std::set<std::string> chat_fields = [] {
    std::set<std::string> s = common;
    s.insert({"messages", "max_completion_tokens", "top_logprobs"});
    return s;
  }();
  static const std::set<std::string> completion_fields = [] {
    std::set<std::string> s = common;
    s.insert({"prompt", "echo"});
    return s;
  }();
  return chat ? chat_fields : completion_fields;
}

}  // namespace

json api_error_object(const ApiError& e) {
  json err = {{"message", e.message}, {"type", e.type}, {"param", nullptr}, {"code", nullptr}};
  if (!e.param.empty()) err["param"] = e.param;
  if (!e.code.empty()) err["code"] = e.code;
  return {{"error", err}};
}

std::string api_error_body(const ApiError& e) { return api_error_object(e).dump(); }

const char* openai_finish_reason(FinishReason r) {
  return r == FinishReason::Length || r == FinishReason::Context ? "length" : "stop";
}

CompletionRequest parse_completion_request(const std::string& text, bool chat, const ServedModel& model) {
  json body;
  try {
    body = json::parse(text);
  } catch (const json::exception& e) {  // a syntax error, or a number too large for a double (out_of_range)
    bad(400, "", fmt::format("the body is not valid JSON: {}", e.what()));
  }
  if (!body.is_object()) bad(400, "", "the body must be a JSON object");
  for (const auto& [key, _] : body.items())
    if (!known_fields(chat).count(key)) bad(400, key, fmt::format("unrecognized request argument supplied: {}", key));

  CompletionRequest r;
  r.chat = chat;
  const json* m = field(body, "model");
  if (!m) bad(400, "model", "'model' is required");
  if (!m->is_string()) bad(400, "model", fmt::format("'model' must be a string, not {}", type_name(*m)));
  r.model = m->get<std::string>();
  if (r.model != model.id)
    bad(404, "model", fmt::format("the model '{}' does not exist; this server serves '{}'", r.model, model.id),
        "model_not_found");

  r.n = static_cast<int>(get_int(body, "n", 1, 16).value_or(1));
  r.stream = get_bool(body, "stream", false);
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) bad(400, "stream_options", "'stream_options' must be an object");
    for (const auto& [key, _] : so->items())
      if (key != "include_usage") bad(400, "stream_options." + key, "unrecognized field in 'stream_options': " + key);
    if (!r.stream) bad(400, "stream_options", "'stream_options' is only allowed with 'stream': true");
    r.include_usage = get_bool(*so, "include_usage", false);
  }

  std::optional<int64_t> max_tokens = get_int(body, "max_tokens", 1, INT32_MAX);
  if (chat) {
    if (auto mct = get_int(body, "max_completion_tokens", 1, INT32_MAX)) max_tokens = mct;
  } else if (!max_tokens) {
    max_tokens = 16;  // the completions API's default
  }
  if (max_tokens) r.options.max_tokens = static_cast<int>(*max_tokens);
  r.options.stop = get_stop(body);

  r.sampling.temperature = static_cast<float>(get_number(body, "temperature", 0, 2).value_or(1.0));
  r.sampling.top_p = static_cast<float>(get_number(body, "top_p", 0, 1).value_or(1.0));
  if (r.sampling.top_p == 0.0f) bad(422, "top_p", "'top_p' must be greater than 0");
  r.sampling.frequency_penalty = static_cast<float>(get_number(body, "frequency_penalty", -2, 2).value_or(0));
  r.sampling.presence_penalty = static_cast<float>(get_number(body, "presence_penalty", -2, 2).value_or(0));
  if (auto seed = get_int(body, "seed", INT64_MIN, INT64_MAX)) r.sampling.seed = static_cast<uint64_t>(*seed);
  else r.sampling.seed = (static_cast<uint64_t>(std::random_device{}()) << 32) | std::random_device{}();
  if (const json* u = field(body, "user"); u && !u->is_string()) bad(400, "user", "'user' must be a string");

  if (chat) {
    r.logprobs = get_bool(body, "logprobs", false);
    r.sampling.top_logprobs = static_cast<int>(get_int(body, "top_logprobs", 0, 20).value_or(0));
    if (r.sampling.top_logprobs > 0 && !r.logprobs)
      bad(400, "top_logprobs", "'top_logprobs' requires 'logprobs': true");
  } else {
    if (auto lp = get_int(body, "logprobs", 0, 5)) {
      r.logprobs = true;
      r.sampling.top_logprobs = static_cast<int>(*lp);
    }
    if (get_bool(body, "echo", false)) bad(422, "echo", "'echo': true is not supported");
  }
  r.sampling.logprobs = r.logprobs;  // unwanted logprobs spare greedy decoding its pass of exps

  const Tokenizer& tok = *model.tokenizer;
  if (chat) {
    if (!model.chat_template) bad(400, "messages", "this model has no chat template; use /v1/completions");
    const json* msgs = field(body, "messages");
    if (!msgs) bad(400, "messages", "'messages' is required");
    if (!msgs->is_array() || msgs->empty()) bad(400, "messages", "'messages' must be a non-empty array");
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    for (size_t i = 0; i < msgs->size(); ++i) {
      const json& msg = (*msgs)[i];
      const std::string where = fmt::format("messages[{}]", i);
      if (!msg.is_object()) bad(400, where, fmt::format("'{}' must be an object", where));
      if (!msg.contains("role") || !msg["role"].is_string())
        bad(400, where + ".role", fmt::format("'{}.role' must be a string", where));
      const std::string role = msg["role"];
      if (role != "system" && role != "user" && role != "assistant" && role != "developer")
        bad(422, where + ".role", fmt::format("'{}.role' = '{}' is not one of system, developer, user, assistant", where, role));
      if (!msg.contains("content")) bad(400, where + ".content", fmt::format("'{}.content' is required", where));
      messages.push_back({{"role", role == "developer" ? "system" : role},
                          {"content", message_text(msg["content"], i)}});
    }
    std::string prompt_text;
    try {
      prompt_text = model.chat_template->render_chat(messages, true, tok.bos_token(), tok.eos_token());
    } catch (const Error& e) {
      bad(422, "messages", fmt::format("the chat template refused these messages: {}", e.what()));
    }
    r.reasoning = prompt_text.ends_with("<think>\n") || prompt_text.ends_with("<think>");
    r.prompt = encode(tok, prompt_text, false, "messages");
  } else {
    const json* p = field(body, "prompt");
    if (!p) bad(400, "prompt", "'prompt' is required");
    if (p->is_string()) {
      r.prompt = encode(tok, p->get<std::string>(), true, "prompt");
    } else if (p->is_array() && !p->empty() && (*p)[0].is_number_integer()) {
      for (const json& id : *p) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= tok.vocab_size())
          bad(422, "prompt", fmt::format("'prompt' token ids must be integers in [0, {})", tok.vocab_size()));
        r.prompt.push_back(static_cast<int32_t>(id.get<int64_t>()));
      }
    } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
      r.prompt = encode(tok, (*p)[0].get<std::string>(), true, "prompt");
    } else {
      bad(400, "prompt", "'prompt' must be a string, an array of one string, or an array of token ids");
    }
    if (r.prompt.empty()) bad(422, "prompt", "'prompt' is empty");
  }
  if (static_cast<int>(r.prompt.size()) >= model.context)
    bad(400, chat ? "messages" : "prompt",
        fmt::format("the prompt is {} tokens; this server's context holds {} per sequence", r.prompt.size(),
                    model.context),
        "context_length_exceeded");
  return r;
}

}  // namespace whale
