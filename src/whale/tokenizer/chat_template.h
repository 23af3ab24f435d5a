// Hugging Face chat templates (tokenizer_config.json `chat_template`, deepseek-spec §5.2): a Jinja2 interpreter
// that renders them byte for byte as transformers does (jinja2 ImmutableSandboxedEnvironment with trim_blocks and
// lstrip_blocks, loop controls, tojson = json.dumps(ensure_ascii=False), raise_exception, strftime_now).
// Values print as Python prints them (None, True, ['a']); an undefined variable renders as "".
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace whale {

namespace jinja {
struct Template;
}

// A template parsed once and rendered many times. Thread-safe: rendering does not modify the parsed template.
class ChatTemplate {
 public:
  // Throws Error "chat template line L col C: ..." on a syntax error.
  static ChatTemplate parse(const std::string& source);

  // Renders with `context`, a JSON object of variables. Throws Error "chat template line L col C: ..." on a
  // runtime error, including raise_exception(msg). With ordered_json, dict key order (tojson, items) is the
  // JSON's; with json it is sorted.
  std::string render(const nlohmann::json& context) const;
  std::string render(const nlohmann::ordered_json& context) const;

  // The context transformers' apply_chat_template passes: messages, add_generation_prompt, bos_token, eos_token,
  // tools = None and documents = None unless `extra` sets them, then every key of `extra`.
  std::string render_chat(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                          const std::string& bos_token, const std::string& eos_token,
                          const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;

 private:
  explicit ChatTemplate(std::shared_ptr<const jinja::Template> t) : template_(std::move(t)) {}
  std::shared_ptr<const jinja::Template> template_;
};

// Renders Jinja template `source` with `context` (a JSON object of variables). Throws Error with
// "chat template line L col C: ..." on a syntax or runtime error (including raise_exception).
std::string render_jinja(const std::string& source, const nlohmann::json& context);

// Renders a chat: context = {messages, add_generation_prompt, bos_token, eos_token} (+ `extra` merged in), as
// ChatTemplate::render_chat.
std::string render_chat_template(const std::string& source, const nlohmann::json& messages, bool add_generation_prompt,
                                 const std::string& bos_token, const std::string& eos_token,
                                 const nlohmann::json& extra = nlohmann::json::object());

}  // namespace whale
