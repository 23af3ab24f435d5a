// The token stream the template parser reads, with the small helpers both of its halves (statements in
// parser.cc, expressions in expr_parser.cc) use.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "whale/tokenizer/jinja/lexer.h"
#include "whale/tokenizer/jinja/value.h"

namespace whale::jinja {

using Names = std::initializer_list<std::string_view>;

inline bool contains(Names names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// How a token is named in an error message.
std::string describe(const Token& t);

class TokenStream {
 protected:
  explicit TokenStream(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  const Token& cur() const { return tokens_[i_]; }
  const Token& peek() const { return tokens_[std::min(i_ + 1, tokens_.size() - 1)]; }
  const Token& next() { return tokens_[i_ < tokens_.size() - 1 ? i_++ : i_]; }
  bool is_op(std::string_view op) const { return cur().type == TokenType::Operator && cur().value == op; }
  bool is_name(std::string_view name) const { return cur().type == TokenType::Name && cur().value == name; }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!is_name(name)) return false;
    next();
    return true;
  }
  [[noreturn]] void fail(const std::string& message) const { throw TemplateError(message, cur().offset); }
  [[noreturn]] void unexpected(const std::string& expected) const {
    fail(fmt::format("expected {}, got {}", expected, describe(cur())));
  }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) unexpected(fmt::format("'{}'", op));
  }
  std::string expect_name() {
    if (cur().type != TokenType::Name) unexpected("a name");
    return next().value;
  }
  void expect_block_end() {
    if (cur().type != TokenType::BlockEnd) unexpected("end of statement block");
    next();
  }

  const Token& previous() const { return tokens_[i_ - 1]; }

  std::vector<Token> tokens_;
  size_t i_ = 0;
};

}  // namespace whale::jinja
