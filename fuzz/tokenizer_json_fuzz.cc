// libFuzzer target: Tokenizer::from_json on arbitrary tokenizer.json bytes. It must load or throw whale::Error;
// a tokenizer that loads must then encode and decode without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "whale/core/error.h"
#include "whale/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  try {
    const whale::Tokenizer t = whale::Tokenizer::from_json(json, "", "fuzz");
    const std::vector<int32_t> ids = t.encode("Hello, world! 123 中文 \n\t ", true);
    (void)t.decode(ids);
  } catch (const whale::Error&) {
  }
  return 0;
}
