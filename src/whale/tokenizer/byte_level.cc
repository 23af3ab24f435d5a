#include "whale/tokenizer/byte_level.h"

#include "whale/tokenizer/utf8.h"

namespace whale {
namespace {

struct Alphabet {
  std::array<char32_t, 256> to_char{};
  std::array<std::string, 256> text{};
  std::array<int16_t, 256 + 68> from_char{};  // -1 where a code point below 324 is not in the alphabet
  Alphabet() {
    from_char.fill(-1);
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_char[b] = printable ? static_cast<char32_t>(b) : next++;
      utf8_append(text[b], to_char[b]);
      from_char[to_char[b]] = static_cast<int16_t>(b);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet a;
  return a;
}

}  // namespace

char32_t byte_to_char(uint8_t b) { return alphabet().to_char[b]; }

std::optional<uint8_t> char_to_byte(char32_t c) {
  if (c >= alphabet().from_char.size() || alphabet().from_char[c] < 0) return std::nullopt;
  return static_cast<uint8_t>(alphabet().from_char[c]);
}

const std::string& byte_level_text(uint8_t b) { return alphabet().text[b]; }

}  // namespace whale
