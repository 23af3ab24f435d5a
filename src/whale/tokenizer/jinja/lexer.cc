#include "whale/tokenizer/jinja/lexer.h"

#include <charconv>
#include <cstdlib>

#include "whale/tokenizer/jinja/text.h"
#include "whale/tokenizer/jinja/value.h"

namespace whale::jinja {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// jinja2 matches whitespace with Python's \s, i.e. every character for which str.isspace() holds.
size_t skip_space(const std::string& s, size_t i) {
  while (i < s.size()) {
    size_t j = i;
    if (!is_space(next_code_point(s, j))) break;
    i = j;
  }
  return i;
}

std::string_view rstrip_space(std::string_view text) {
  size_t keep = 0;
  for (size_t i = 0; i < text.size();) {
    if (!is_space(next_code_point(text, i))) keep = i;
  }
  return text.substr(0, keep);
}

bool all_space(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    if (!is_space(next_code_point(text, i))) return false;
  }
  return !text.empty();
}

// Python's "unicode-escape" decoding of a string literal body, as jinja2 applies it.
std::string unescape(std::string_view body, size_t offset) {
  std::string out;
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c != '\\' || i + 1 == body.size()) {
      out += c;
      continue;
    }
    const char e = body[++i];
    switch (e) {
      case '\n': break;
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x':
      case 'u':
      case 'U': {
        const size_t len = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        uint32_t cp = 0;
        const char* first = body.data() + i + 1;
        const bool complete = i + len < body.size();
        const auto [ptr, ec] = std::from_chars(first, first + (complete ? len : 0), cp, 16);
        if (!complete || ec != std::errc() || ptr != first + len || cp > 0x10FFFF) {
          throw TemplateError(std::string("truncated \\") + e + " escape in string literal", offset);
        }
        append_code_point(out, cp);
        i += len;
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          uint32_t cp = e - '0';
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7'; ++k) {
            cp = cp * 8 + (body[++i] - '0');
          }
          append_code_point(out, cp);
        } else {  // unknown escapes stay as written
          out += '\\';
          out += e;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(const std::string& source) : s_(source) {}

  std::vector<Token> run() {
    while (pos_ < s_.size()) {
      const size_t tag = find_tag(pos_);
      if (tag == std::string::npos) {
        push_text(std::string_view(s_).substr(pos_), pos_);
        break;
      }
      const char kind = s_[tag + 1];
      size_t p = tag + 2;
      char sign = 0;
      if (p < s_.size() && (s_[p] == '-' || s_[p] == '+')) sign = s_[p++];
      size_t raw_body = 0;
      const bool raw = kind == '%' && match_raw_begin(p, raw_body);
      push_text(strip_before_tag(std::string_view(s_).substr(pos_, tag - pos_), sign, kind != '{'), pos_);
      if (kind == '#') {
        lex_comment(tag, p);
      } else if (raw) {
        lex_raw(tag, raw_body);
      } else {
        lex_tag(kind, tag, p);
      }
    }
    tokens_.push_back(Token{TokenType::End, "", s_.size()});
    return std::move(tokens_);
  }

 private:
  size_t find_tag(size_t from) const {
    for (size_t i = s_.find('{', from); i != std::string::npos; i = s_.find('{', i + 1)) {
      if (i + 1 < s_.size() && (s_[i + 1] == '{' || s_[i + 1] == '%' || s_[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  bool starts(size_t p, std::string_view what) const { return s_.compare(p, what.size(), what) == 0; }

  // `-` strips all whitespace before the tag; otherwise lstrip_blocks removes the whitespace between the start
  // of the line and a block or comment tag (jinja2 lexer.py, tokeniter's OptionalLStrip branch).
  std::string_view strip_before_tag(std::string_view text, char sign, bool lstrip_applies) const {
    if (sign == '-') return rstrip_space(text);
    if (sign == '+' || !lstrip_applies) return text;
    const size_t line_start = text.rfind('\n') + 1;  // 0 when there is no newline
    if ((line_start > 0 || line_starting_) && all_space(text.substr(line_start))) return text.substr(0, line_start);
    return text;
  }

  void push_text(std::string_view text, size_t offset) {
    if (!text.empty()) tokens_.push_back(Token{TokenType::Text, std::string(text), offset});
  }

  // After a tag: `-` strips all following whitespace, `+` nothing, otherwise trim_blocks drops one newline
  // (blocks and comments only).
  void finish_tag(size_t end, char sign, bool trim) {
    if (sign == '-') {
      end = skip_space(s_, end);
    } else if (sign == 0 && trim && end < s_.size() && s_[end] == '\n') {
      ++end;
    }
    line_starting_ = end > 0 && s_[end - 1] == '\n';
    pos_ = end;
  }

  void lex_comment(size_t tag, size_t p) {
    const size_t close = s_.find("#}", p);
    if (close == std::string::npos) throw TemplateError("missing end of comment tag", tag);
    const char sign = close > p && (s_[close - 1] == '-' || s_[close - 1] == '+') ? s_[close - 1] : 0;
    finish_tag(close + 2, sign, true);
  }

  // `{% raw %}` (jinja2 root_raw_re): the begin tag never trims the newline after it.
  bool match_raw_begin(size_t p, size_t& body) const {
    size_t q = skip_space(s_, p);
    if (!starts(q, "raw")) return false;
    q = skip_space(s_, q + 3);
    if (starts(q, "-%}")) {
      body = skip_space(s_, q + 3);
      return true;
    }
    if (starts(q, "%}")) {
      body = q + 2;
      return true;
    }
    return false;
  }

  void lex_raw(size_t tag, size_t body) {
    line_starting_ = body > 0 && s_[body - 1] == '\n';
    for (size_t k = s_.find("{%", body); k != std::string::npos; k = s_.find("{%", k + 1)) {
      size_t q = k + 2;
      const char sign = q < s_.size() && (s_[q] == '-' || s_[q] == '+') ? s_[q++] : 0;
      q = skip_space(s_, q);
      if (!starts(q, "endraw")) continue;
      q = skip_space(s_, q + 6);
      char end_sign = 0;
      if (starts(q, "-%}") || starts(q, "+%}")) {
        end_sign = s_[q];
        q += 3;
      } else if (starts(q, "%}")) {
        q += 2;
      } else {
        continue;
      }
      push_text(strip_before_tag(std::string_view(s_).substr(body, k - body), sign, true), body);
      finish_tag(q, end_sign, true);
      return;
    }
    throw TemplateError("missing end of raw directive", tag);
  }

  void lex_tag(char kind, size_t tag, size_t p) {
    const bool block = kind == '%';
    tokens_.push_back(Token{block ? TokenType::BlockBegin : TokenType::VariableBegin, "", tag});
    std::string brackets;  // the closing brackets we wait for
    while (true) {
      if (brackets.empty()) {
        const std::string_view close = block ? "%}" : "}}";
        char sign = 0;
        size_t end = 0;
        if (s_[p] == '-' && starts(p + 1, close)) {
          sign = '-';
        } else if (block && s_[p] == '+' && starts(p + 1, close)) {
          sign = '+';
        }
        if (sign || starts(p, close)) {
          end = p + (sign ? 1 : 0) + 2;
          tokens_.push_back(Token{block ? TokenType::BlockEnd : TokenType::VariableEnd, "", p});
          finish_tag(end, sign, block);
          return;
        }
      }
      if (p >= s_.size()) {
        throw TemplateError(std::string("unexpected end of template, expected '") + (block ? "%}" : "}}") + "'", tag);
      }
      size_t next = p;
      if (is_space(next_code_point(s_, next))) {
        p = skip_space(s_, p);
      } else if (is_digit(s_[p])) {
        p = lex_number(p);
      } else if (is_name_start(s_[p])) {
        size_t q = p;
        while (q < s_.size() && is_name_char(s_[q])) ++q;
        tokens_.push_back(Token{TokenType::Name, s_.substr(p, q - p), p});
        p = q;
      } else if (s_[p] == '\'' || s_[p] == '"') {
        p = lex_string(p);
      } else {
        p = lex_operator(p, brackets);
      }
    }
  }

  size_t scan_digits(size_t p) const {  // \d+(_\d+)*, or npos
    if (p >= s_.size() || !is_digit(s_[p])) return std::string::npos;
    while (p < s_.size() && is_digit(s_[p])) {
      ++p;
      if (p + 1 < s_.size() && s_[p] == '_' && is_digit(s_[p + 1])) ++p;
    }
    return p;
  }

  size_t lex_number(size_t p) {
    // jinja2 float_re: (?<!\.)digits((\.digits)?e[+-]?digits|\.digits), tried before integers.
    if (p == 0 || s_[p - 1] != '.') {
      const size_t int_end = scan_digits(p);
      size_t end = int_end;
      const size_t frac_end = s_[int_end] == '.' ? scan_digits(int_end + 1) : std::string::npos;
      if (frac_end != std::string::npos) end = frac_end;
      size_t exp_end = std::string::npos;
      if (end < s_.size() && (s_[end] == 'e' || s_[end] == 'E')) {
        const size_t sign = end + 1 < s_.size() && (s_[end + 1] == '+' || s_[end + 1] == '-') ? end + 2 : end + 1;
        exp_end = scan_digits(sign);
      }
      if (exp_end != std::string::npos) end = exp_end;
      if (end != int_end) {
        std::string spelling = s_.substr(p, end - p);
        std::string digits;
        for (char c : spelling) {
          if (c != '_') digits += c;
        }
        Token t{TokenType::Float, spelling, p};
        t.number = std::strtod(digits.c_str(), nullptr);
        tokens_.push_back(std::move(t));
        return end;
      }
    }
    // jinja2 integer_re: 0b(_?[01])+ | 0o(_?[0-7])+ | 0x(_?[0-9a-f])+ | [1-9](_?\d)* | 0(_?0)*
    const auto digit_value = [](char c) {
      return is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : 99;
    };
    int base = 10;
    size_t q = p + 1;
    if (s_[p] == '0' && q < s_.size()) {
      const char x = s_[q] | 0x20;
      const int b = x == 'b' ? 2 : x == 'o' ? 8 : x == 'x' ? 16 : 0;
      const size_t first = q + 1 < s_.size() && s_[q + 1] == '_' ? q + 2 : q + 1;
      if (b && first < s_.size() && digit_value(s_[first]) < b) {
        base = b;
        q = first + 1;
      }
    }
    const int limit = base != 10 ? base : s_[p] == '0' ? 1 : 10;  // after a leading 0 only zeros follow
    while (q < s_.size()) {
      const size_t d = s_[q] == '_' && q + 1 < s_.size() ? q + 1 : q;
      if (digit_value(s_[d]) >= limit) break;
      q = d + 1;
    }
    std::string digits;
    for (size_t i = base == 10 ? p : p + 2; i < q; ++i) {
      if (s_[i] != '_') digits += s_[i];
    }
    Token t{TokenType::Integer, s_.substr(p, q - p), p};
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), t.integer, base);
    if (ec != std::errc()) throw TemplateError("integer literal too large: " + t.value, p);
    tokens_.push_back(std::move(t));
    return q;
  }

  size_t lex_string(size_t p) {
    const char quote = s_[p];
    size_t q = p + 1;
    while (q < s_.size() && s_[q] != quote) q += s_[q] == '\\' ? 2 : 1;
    if (q >= s_.size()) throw TemplateError("unterminated string literal", p);
    tokens_.push_back(Token{TokenType::String, unescape(std::string_view(s_).substr(p + 1, q - p - 1), p), p});
    return q + 1;
  }

  size_t lex_operator(size_t p, std::string& brackets) {
    static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    for (std::string_view op : kTwo) {
      if (starts(p, op)) {
        tokens_.push_back(Token{TokenType::Operator, std::string(op), p});
        return p + 2;
      }
    }
    const char c = s_[p];
    if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos) {
      size_t end = p;
      next_code_point(s_, end);
      throw TemplateError("unexpected char '" + s_.substr(p, end - p) + "'", p);
    }
    if (c == '(' || c == '[' || c == '{') brackets += c == '(' ? ')' : c == '[' ? ']' : '}';
    if (c == ')' || c == ']' || c == '}') {
      if (brackets.empty()) throw TemplateError(std::string("unexpected '") + c + "'", p);
      if (brackets.back() != c) {
        throw TemplateError(std::string("unexpected '") + c + "', expected '" + brackets.back() + "'", p);
      }
      brackets.pop_back();
    }
    tokens_.push_back(Token{TokenType::Operator, std::string(1, c), p});
    return p + 1;
  }

  const std::string& s_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::vector<Token> tokenize(const std::string& source) { return Lexer(source).run(); }

std::string describe_position(const std::string& source, size_t offset) {
  offset = std::min(offset, source.size());
  size_t line = 1, line_start = 0;
  for (size_t i = 0; i < offset; ++i) {
    if (source[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  const size_t col = code_point_count(std::string_view(source).substr(line_start, offset - line_start)) + 1;
  return "line " + std::to_string(line) + " col " + std::to_string(col);
}

}  // namespace whale::jinja
