// GPT-2's byte-to-character alphabet, used by ByteLevel pre-tokenizers and decoders: every byte maps to one
// printable code point, so BPE vocabularies can be written as text.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace whale {

// Bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF map to themselves; the other 68 bytes, in order, to U+0100 onward.
char32_t byte_to_char(uint8_t b);
// The byte a byte-level character stands for, if it is one of the 256.
std::optional<uint8_t> char_to_byte(char32_t c);
// The UTF-8 text of byte_to_char(b).
const std::string& byte_level_text(uint8_t b);

}  // namespace whale
