// libFuzzer target: encode arbitrary text with the real DeepSeek-V3 tokenizer and check the properties the
// tokenizer promises: invalid UTF-8 is an Error; valid text round-trips through decode; streaming decode of the ids
// equals the one-shot decode and never emits a partial UTF-8 sequence.
// The tokenizer: fuzz_tokenizer.h.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "fuzz_tokenizer.h"
#include "whale/core/error.h"
#include "whale/tokenizer/tokenizer.h"
#include "whale/tokenizer/utf8.h"

namespace {

std::unique_ptr<whale::Tokenizer> tokenizer;

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tokenizer = std::make_unique<whale::Tokenizer>(whale::fuzz::load_fuzz_tokenizer("tokenizer_encode_fuzz"));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool valid = whale::utf8_invalid_offset(text) == std::string_view::npos;
  std::vector<int32_t> ids;
  try {
    ids = tokenizer->encode(text, false);
  } catch (const whale::Error&) {
    require(!valid);
    return 0;
  }
  require(valid);
  const std::string decoded = tokenizer->decode(ids, false, false);
  require(decoded == text);

  whale::StreamingDecoder stream(*tokenizer);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string piece = stream.push(id);
    require(whale::utf8_invalid_offset(piece) == std::string_view::npos);
    streamed += piece;
  }
  streamed += stream.finish();
  require(streamed == decoded);

  // The input's bytes read as ids exercise decoding of arbitrary (also invalid) byte sequences.
  std::vector<int32_t> raw;
  for (size_t i = 0; i + 1 < size; i += 2) raw.push_back((data[i] | (data[i + 1] << 8)) % tokenizer->vocab_size());
  const std::string lossy = tokenizer->decode(raw, false, false);
  require(whale::utf8_invalid_offset(lossy) == std::string_view::npos);
  return 0;
}
