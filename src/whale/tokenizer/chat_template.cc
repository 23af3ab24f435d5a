#include "whale/tokenizer/chat_template.h"

#include "whale/core/error.h"
#include "whale/tokenizer/jinja/eval.h"
#include "whale/tokenizer/jinja/lexer.h"
#include "whale/tokenizer/jinja/parser.h"

namespace whale {
namespace {

// Turns a TemplateError into whale's Error, naming the line and column in the template.
[[noreturn]] void rethrow(const jinja::TemplateError& e, const std::string& normalized_source) {
  throw Error("chat template " + jinja::describe_position(normalized_source, e.offset) + ": " + e.what());
}

}  // namespace

ChatTemplate ChatTemplate::parse(const std::string& source) {
  try {
    return ChatTemplate(jinja::parse_template(source));
  } catch (const jinja::TemplateError& e) {
    rethrow(e, jinja::normalize_newlines(source));
  }
}

template <typename Json>
static std::string render_with(const jinja::Template& t, const Json& context) {
  try {
    if (!context.is_object()) throw Error("chat template context must be a JSON object");
    return jinja::render(t, jinja::from_json(context));
  } catch (const jinja::TemplateError& e) {
    rethrow(e, t.source);
  }
}

std::string ChatTemplate::render(const nlohmann::json& context) const { return render_with(*template_, context); }

std::string ChatTemplate::render(const nlohmann::ordered_json& context) const {
  return render_with(*template_, context);
}

std::string ChatTemplate::render_chat(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                      const std::string& bos_token, const std::string& eos_token,
                                      const nlohmann::ordered_json& extra) const {
  nlohmann::ordered_json context = {{"messages", messages},
                                    {"tools", nullptr},
                                    {"documents", nullptr},
                                    {"add_generation_prompt", add_generation_prompt},
                                    {"bos_token", bos_token},
                                    {"eos_token", eos_token}};
  if (!extra.is_object()) throw Error("chat template extra variables must be a JSON object");
  for (auto it = extra.begin(); it != extra.end(); ++it) context[it.key()] = it.value();
  return render(context);
}

std::string render_jinja(const std::string& source, const nlohmann::json& context) {
  return ChatTemplate::parse(source).render(context);
}

std::string render_chat_template(const std::string& source, const nlohmann::json& messages, bool add_generation_prompt,
                                 const std::string& bos_token, const std::string& eos_token,
                                 const nlohmann::json& extra) {
  return ChatTemplate::parse(source).render_chat(nlohmann::ordered_json(messages), add_generation_prompt, bos_token,
                                                 eos_token, nlohmann::ordered_json(extra));
}

}  // namespace whale
