// whale chat-template: an OpenAI-style conversation on stdin, rendered by the model's chat template.
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "whale/cli/command.h"
#include "whale/core/error.h"
#include "whale/tokenizer/chat_template.h"
#include "whale/tokenizer/tokenizer.h"

namespace whale::cli {
namespace {

struct ChatTemplateOptions {
  std::string model;
  bool no_generation_prompt = false;
};

// Accepts [{"role", "content"}, ...] or {"messages": [...]}; content given as OpenAI text parts is joined.
nlohmann::ordered_json read_messages(const std::string& input) {
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(input);
  } catch (const nlohmann::json::exception& e) {
    fail("stdin: not valid JSON: {}", e.what());
  }
  if (j.is_object() && j.contains("messages")) j = j["messages"];
  if (!j.is_array()) fail("stdin: expected a JSON array of messages or an object with \"messages\"");
  for (size_t i = 0; i < j.size(); ++i) {
    auto& m = j[i];
    if (!m.is_object()) fail("stdin: messages[{}] is not an object", i);
    if (!m.contains("role") || !m["role"].is_string()) fail("stdin: messages[{}].role must be a string", i);
    if (!m.contains("content")) continue;
    auto& content = m["content"];
    if (content.is_array()) {
      std::string text;
      for (size_t k = 0; k < content.size(); ++k) {
        const auto& part = content[k];
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
          fail("stdin: messages[{}].content[{}] is not a {{\"type\": \"text\", \"text\": ...}} part", i, k);
        text += part["text"].get<std::string>();
      }
      content = text;
    } else if (!content.is_string() && !content.is_null()) {
      fail("stdin: messages[{}].content must be a string, null or a list of text parts", i);
    }
  }
  return j;
}

void run_chat_template(const ChatTemplateOptions& opt) {
  const Tokenizer tok = Tokenizer::load(opt.model);
  if (tok.chat_template().empty())
    fail("{}/tokenizer_config.json: no \"chat_template\" to render", opt.model);
  const nlohmann::ordered_json messages = read_messages(read_stdin());
  const std::string text = with_context(opt.model + "/tokenizer_config.json", [&] {
    const ChatTemplate tpl = ChatTemplate::parse(tok.chat_template());
    return tpl.render_chat(messages, !opt.no_generation_prompt, tok.bos_token(), tok.eos_token());
  });
  write_stdout(text);
}

}  // namespace

Command register_chat_template(CLI::App& root) {
  auto opt = std::make_shared<ChatTemplateOptions>();
  CLI::App* app = root.add_subcommand(
      "chat-template", "Render a JSON conversation (OpenAI messages) from stdin with the model's chat template");
  app->add_option("--model", opt->model, "Directory with tokenizer.json and tokenizer_config.json")->required();
  app->add_flag("--no-generation-prompt", opt->no_generation_prompt,
                "Leave off the assistant prompt that starts the model's reply");
  return {app, [opt] { run_chat_template(*opt); }};
}

}  // namespace whale::cli
