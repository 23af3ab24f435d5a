#include "whale/tokenizer/jinja/text.h"

#include <algorithm>

#include <utf8proc.h>

#include "whale/tokenizer/jinja/value.h"
#include "whale/tokenizer/utf8.h"

namespace whale::jinja {

char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  const size_t len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
  if (len == 1) {
    ++i;
    return b0;
  }
  if (len == 0 || i + len > s.size()) {
    ++i;
    return 0xFFFD;
  }
  char32_t cp = b0 & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  i += len;
  return cp;
}

void append_code_point(std::string& out, char32_t cp) {
  if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // a lone surrogate has no UTF-8 form
  utf8_append(out, cp);
}

std::u32string to_u32(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) out += next_code_point(s, i);
  return out;
}

std::string from_u32(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_code_point(out, c);
  return out;
}

size_t code_point_count(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    next_code_point(s, i);
    ++n;
  }
  return n;
}

bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool is_printable(char32_t c) {
  if (c == ' ') return true;
  if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD || is_space(c)) return false;
  if ((c >= 0x200B && c <= 0x200F) || (c >= 0x202A && c <= 0x202E) || (c >= 0x2060 && c <= 0x206F)) return false;
  if (c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB) || (c >= 0xD800 && c <= 0xF8FF)) return false;
  return c < 0xF0000;
}

// Simple (one code point) case mappings of the Unicode database (utf8proc), as Python's str methods use where a
// character has no multi-character mapping (the one they hit in chat templates, 'ß'.upper() == 'SS', is handled
// by upper()).
char32_t to_upper(char32_t c) { return static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c))); }
char32_t to_lower(char32_t c) { return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))); }

bool is_cased(char32_t c) { return to_upper(c) != c || to_lower(c) != c || c == 0xDF; }

std::string upper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const char32_t c = next_code_point(s, i);
    if (c == 0xDF) {
      out += "SS";  // Python: 'ß'.upper() == 'SS'
    } else {
      append_code_point(out, to_upper(c));
    }
  }
  return out;
}

// Python applies the final-sigma rule: capital sigma after a cased letter and not before one becomes U+03C2.
std::string lower(std::string_view s) {
  const std::u32string u = to_u32(s);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < u.size(); ++i) {
    const bool final_sigma = u[i] == 0x3A3 && i > 0 && is_cased(u[i - 1]) && (i + 1 == u.size() || !is_cased(u[i + 1]));
    append_code_point(out, final_sigma ? 0x3C2 : to_lower(u[i]));
  }
  return out;
}

std::string capitalize(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const bool first = i == 0;
    const char32_t c = next_code_point(s, i);
    append_code_point(out, first ? to_upper(c) : to_lower(c));
  }
  return out;
}

std::string python_title(std::string_view s) {
  std::string out;
  bool previous_cased = false;
  for (size_t i = 0; i < s.size();) {
    const char32_t c = next_code_point(s, i);
    append_code_point(out, previous_cased ? to_lower(c) : to_upper(c));
    previous_cased = is_cased(c);
  }
  return out;
}

// jinja2 do_title: re.split(r"([-\s\(\{\[\<]+)") and then item[0].upper() + item[1:].lower() for each piece.
std::string jinja_title(std::string_view s) {
  std::string out;
  bool word_start = true;
  for (size_t i = 0; i < s.size();) {
    const char32_t c = next_code_point(s, i);
    const bool separator = is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (separator) {
      append_code_point(out, c);
      word_start = true;
    } else {
      append_code_point(out, word_start ? to_upper(c) : to_lower(c));
      word_start = false;
    }
  }
  return out;
}

std::string strip(std::string_view s, const std::string* chars, bool left, bool right) {
  const std::u32string u = to_u32(s);
  const std::u32string set = chars ? to_u32(*chars) : std::u32string();
  auto strippable = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : is_space(c); };
  size_t begin = 0, end = u.size();
  if (left) {
    while (begin < end && strippable(u[begin])) ++begin;
  }
  if (right) {
    while (end > begin && strippable(u[end - 1])) --end;
  }
  return from_u32(std::u32string_view(u).substr(begin, end - begin));
}

std::vector<std::string> split(std::string_view s, const std::string* sep, int64_t maxsplit) {
  std::vector<std::string> parts;
  if (sep) {
    if (sep->empty()) raise("empty separator");
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      const size_t at = s.find(*sep, start);
      if (at == std::string_view::npos) break;
      parts.emplace_back(s.substr(start, at - start));
      start = at + sep->size();
    }
    parts.emplace_back(s.substr(start));
    return parts;
  }
  const std::u32string u = to_u32(s);
  size_t i = 0;
  while (true) {
    while (i < u.size() && is_space(u[i])) ++i;
    if (i == u.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
      size_t end = u.size();
      while (end > i && is_space(u[end - 1])) --end;
      parts.push_back(from_u32(std::u32string_view(u).substr(i, end - i)));
      break;
    }
    size_t j = i;
    while (j < u.size() && !is_space(u[j])) ++j;
    parts.push_back(from_u32(std::u32string_view(u).substr(i, j - i)));
    i = j;
  }
  return parts;
}

std::vector<std::string> rsplit(std::string_view s, const std::string* sep, int64_t maxsplit) {
  if (maxsplit < 0) return split(s, sep, maxsplit);
  std::vector<std::string> parts;
  if (sep) {
    if (sep->empty()) raise("empty separator");
    size_t end = s.size();
    while (static_cast<int64_t>(parts.size()) < maxsplit) {
      if (end < sep->size()) break;
      const size_t at = s.rfind(*sep, end - sep->size());
      if (at == std::string_view::npos) break;
      parts.emplace_back(s.substr(at + sep->size(), end - at - sep->size()));
      end = at;
    }
    parts.emplace_back(s.substr(0, end));
  } else {
    const std::u32string u = to_u32(s);
    size_t end = u.size();
    while (true) {
      while (end > 0 && is_space(u[end - 1])) --end;
      if (end == 0) break;
      if (static_cast<int64_t>(parts.size()) == maxsplit) {
        size_t begin = 0;
        while (begin < end && is_space(u[begin])) ++begin;
        parts.push_back(from_u32(std::u32string_view(u).substr(begin, end - begin)));
        break;
      }
      size_t begin = end;
      while (begin > 0 && !is_space(u[begin - 1])) --begin;
      parts.push_back(from_u32(std::u32string_view(u).substr(begin, end - begin)));
      end = begin;
    }
  }
  std::reverse(parts.begin(), parts.end());
  return parts;
}

std::vector<std::string> splitlines(std::string_view s, bool keepends) {
  const std::u32string u = to_u32(s);
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < u.size(); ++i) {
    const char32_t c = u[i];
    const bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85 ||
                     c == 0x2028 || c == 0x2029;
    if (!brk) continue;
    size_t end = i + 1;
    if (c == '\r' && i + 1 < u.size() && u[i + 1] == '\n') end = i + 2;
    lines.push_back(from_u32(std::u32string_view(u).substr(start, (keepends ? end : i) - start)));
    start = end;
    i = end - 1;
  }
  if (start < u.size()) lines.push_back(from_u32(std::u32string_view(u).substr(start)));
  return lines;
}

std::string replace(std::string_view s, std::string_view old, std::string_view with, int64_t count) {
  std::string out;
  if (old.empty()) {  // Python inserts `with` before every code point and at the end
    int64_t done = 0;
    size_t i = 0;
    while (i < s.size()) {
      if (count < 0 || done < count) {
        out += with;
        ++done;
      }
      const size_t start = i;
      next_code_point(s, i);
      out += s.substr(start, i - start);
    }
    if (count < 0 || done < count) out += with;
    return out;
  }
  size_t start = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t at = s.find(old, start);
    if (at == std::string_view::npos) break;
    out += s.substr(start, at - start);
    out += with;
    start = at + old.size();
    ++done;
  }
  out += s.substr(start);
  return out;
}

}  // namespace whale::jinja
