#include "whale/tokenizer/utf8.h"

namespace whale {

namespace {
constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
}

size_t utf8_invalid_offset(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const uint8_t b = static_cast<uint8_t>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) len = 2;
    else if (b >= 0xE0 && b <= 0xEF) len = 3, lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
    else if (b >= 0xF0 && b <= 0xF4) len = 4, lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
    else return i;
    if (i + len > n) return i;
    const uint8_t b1 = static_cast<uint8_t>(s[i + 1]);
    if (b1 < lo || b1 > hi) return i;
    for (int k = 2; k < len; ++k) {
      const uint8_t bk = static_cast<uint8_t>(s[i + k]);
      if (bk < 0x80 || bk > 0xBF) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

char32_t utf8_next(std::string_view s, size_t& i) {
  const uint8_t b = static_cast<uint8_t>(s[i]);
  const size_t len = utf8_sequence_length(b);
  char32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
  for (size_t k = 1; k < len && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
  i += len;
  return cp;
}

// The WHATWG "UTF-8 decoder" (Encoding Standard §9.1.1), one byte at a time.
void Utf8StreamDecoder::feed(uint8_t b, std::string& out) {
  if (needed_ == 0) {
    if (b < 0x80) {
      out += static_cast<char>(b);
    } else if (b >= 0xC2 && b <= 0xDF) {
      needed_ = 1;
      code_point_ = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
      if (b == 0xE0) lower_ = 0xA0;
      if (b == 0xED) upper_ = 0x9F;
      needed_ = 2;
      code_point_ = b & 0xF;
    } else if (b >= 0xF0 && b <= 0xF4) {
      if (b == 0xF0) lower_ = 0x90;
      if (b == 0xF4) upper_ = 0x8F;
      needed_ = 3;
      code_point_ = b & 0x7;
    } else {
      out += kReplacement;
    }
    return;
  }
  if (b < lower_ || b > upper_) {
    code_point_ = 0;
    needed_ = seen_ = 0;
    lower_ = 0x80;
    upper_ = 0xBF;
    out += kReplacement;
    feed(b, out);  // the byte starts afresh
    return;
  }
  lower_ = 0x80;
  upper_ = 0xBF;
  code_point_ = (code_point_ << 6) | (b & 0x3F);
  if (++seen_ == needed_) {
    utf8_append(out, code_point_);
    code_point_ = 0;
    needed_ = seen_ = 0;
  }
}

std::string Utf8StreamDecoder::push(std::string_view bytes) {
  std::string out;
  for (char c : bytes) feed(static_cast<uint8_t>(c), out);
  return out;
}

std::string Utf8StreamDecoder::finish() {
  std::string out;
  if (needed_ != 0) out += kReplacement;
  code_point_ = 0;
  needed_ = seen_ = 0;
  lower_ = 0x80;
  upper_ = 0xBF;
  return out;
}

std::string utf8_lossy(std::string_view bytes) {
  Utf8StreamDecoder d;
  std::string out = d.push(bytes);
  out += d.finish();
  return out;
}

}  // namespace whale
