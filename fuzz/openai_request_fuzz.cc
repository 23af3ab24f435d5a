// libFuzzer target: parse_completion_request (whale serve's request bodies) on arbitrary bytes, with the real
// DeepSeek-V3 tokenizer and chat template (fuzz_tokenizer.h). It must return a request within the limits it promises
// or throw ApiError; anything else (a crash, a sanitizer report, another exception type) is a finding. The first byte
// picks the endpoint (chat or completions).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "fuzz_tokenizer.h"
#include "whale/core/error.h"
#include "whale/server/openai_api.h"

namespace {

std::unique_ptr<whale::Tokenizer> tokenizer;
std::optional<whale::ChatTemplate> chat_template;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tokenizer = std::make_unique<whale::Tokenizer>(whale::fuzz::load_fuzz_tokenizer("openai_request_fuzz"));
  try {
    if (!tokenizer->chat_template().empty())
      chat_template.emplace(whale::ChatTemplate::parse(tokenizer->chat_template()));
  } catch (const whale::Error& e) {
    std::fprintf(stderr, "openai_request_fuzz: %s\n", e.what());
    std::exit(1);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  whale::ServedModel model;
  model.id = "m";
  model.tokenizer = tokenizer.get();
  model.chat_template = chat_template ? &*chat_template : nullptr;
  model.context = 512;
  const bool chat = data[0] & 1;
  try {
    const whale::CompletionRequest r =
        whale::parse_completion_request(std::string(reinterpret_cast<const char*>(data + 1), size - 1), chat, model);
    if (r.prompt.empty() || static_cast<int>(r.prompt.size()) >= model.context) std::abort();
    if (r.n < 1 || r.n > 16) std::abort();
    for (int32_t id : r.prompt)
      if (id < 0 || id >= tokenizer->vocab_size()) std::abort();
  } catch (const whale::ApiError& e) {
    if (e.status < 400 || e.status > 499 || e.message.empty()) std::abort();
  }
  return 0;
}
