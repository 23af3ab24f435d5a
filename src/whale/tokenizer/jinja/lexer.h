// Splits a Jinja template into text and tag tokens the way jinja2's lexer does with trim_blocks=True and
// lstrip_blocks=True (the Hugging Face chat-template settings), applying all whitespace control here:
// `{%-`/`-%}` strip every whitespace character before/after the tag, `{%+`/`+%}` disable lstrip_blocks/
// trim_blocks for that tag, trim_blocks drops one newline after `%}` and `#}`, and lstrip_blocks drops the spaces
// and tabs between the start of a line and a `{%` or `{#` tag. Comments and `{% raw %}` are resolved here too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace whale::jinja {

enum class TokenType {
  Text,
  VariableBegin,
  VariableEnd,
  BlockBegin,
  BlockEnd,
  Name,
  String,
  Integer,
  Float,
  Operator,
  End,
};

struct Token {
  TokenType type;
  std::string value;   // text, name, unescaped string, operator, or the literal's spelling
  size_t offset = 0;   // byte offset into the normalized source
  int64_t integer = 0;
  double number = 0;
};

// jinja2 normalizes \r\n and \r to \n and, without keep_trailing_newline, drops one trailing newline.
std::string normalize_newlines(std::string_view source);

// Tokenizes a normalized source; throws TemplateError (with offset) on a lexical error.
std::vector<Token> tokenize(const std::string& source);

// "line L col C" (1-based, columns count code points) of a byte offset into a normalized source.
std::string describe_position(const std::string& source, size_t offset);

}  // namespace whale::jinja
