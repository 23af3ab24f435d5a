// UTF-8 helpers shared by the tokenizer: validation, code point iteration, and the WHATWG decoder that turns
// arbitrary bytes into text with U+FFFD for each maximal invalid subsequence (what Hugging Face's
// String::from_utf8_lossy and the JavaScript TextDecoder both do).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace whale {

// Index of the first byte that is not part of a valid UTF-8 sequence, or npos if all of `s` is valid.
size_t utf8_invalid_offset(std::string_view s);

// Appends code point cp (must be a valid scalar value) to out.
void utf8_append(std::string& out, char32_t cp);

// Decodes the code point at s[i] (s must be valid UTF-8) and advances i past it.
char32_t utf8_next(std::string_view s, size_t& i);

// Length in bytes of the UTF-8 sequence that starts with lead byte b (1 for invalid lead bytes).
inline size_t utf8_sequence_length(uint8_t b) {
  return b < 0x80 ? 1 : b < 0xC0 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : b < 0xF8 ? 4 : 1;
}

// Incremental UTF-8 to text conversion. push() returns only complete characters; bytes of an unfinished sequence
// wait for the next push or for finish(). Invalid bytes become U+FFFD exactly as a one-shot lossy decode would.
class Utf8StreamDecoder {
 public:
  std::string push(std::string_view bytes);
  std::string finish();  // flushes an unfinished sequence as U+FFFD and resets

 private:
  void feed(uint8_t b, std::string& out);
  char32_t code_point_ = 0;
  int needed_ = 0, seen_ = 0;
  uint8_t lower_ = 0x80, upper_ = 0xBF;
};

// One-shot lossy decode: the same as Utf8StreamDecoder::push then finish.
std::string utf8_lossy(std::string_view bytes);

}  // namespace whale
