// libFuzzer target: parse_jsonl_tokens (whale train's .jsonl data) on arbitrary bytes. It must return ids inside the
// vocabulary, or throw whale::Error naming the line; anything else (a crash, a sanitizer report, another exception
// type, an id out of range) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "whale/core/error.h"
#include "whale/train/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr int32_t kVocab = 1000;
  try {
    const auto ids = whale::train::parse_jsonl_tokens(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.jsonl", nullptr, 1, kVocab);
    for (int32_t id : ids)
      if (id < 0 || id >= kVocab) std::abort();
  } catch (const whale::Error&) {
  }
  return 0;
}
