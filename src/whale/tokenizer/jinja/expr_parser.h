// The expression half of the template parser (jinja2 parser.py): the statement parser (parser.cc) derives from it.
#pragma once

#include <string>
#include <vector>

#include "whale/tokenizer/jinja/ast.h"
#include "whale/tokenizer/jinja/token_stream.h"

namespace whale::jinja {

// Bounds the recursion of the parser, of evaluation and of the tree's destructors on hostile input.
constexpr int kMaxExprHeight = 256;

class ExprParser : protected TokenStream {
 protected:
  explicit ExprParser(std::vector<Token> tokens) : TokenStream(std::move(tokens)) {}

  // A conditional expression (`a if c else b`) unless with_condexpr is false.
  ExprPtr parse_expression(bool with_condexpr);
  // Comma-separated expressions: one expression, or a Tuple when there is a comma (or explicit parentheses).
  // `simplified` parses only primaries (for-loop and set targets); `extra_end` names also end the tuple.
  ExprPtr parse_tuple(bool simplified, bool with_condexpr, Names extra_end, bool explicit_parentheses);
  // `| name(args) | name ...`; with start_inline the first filter has no leading '|'. Each Filter node gets a
  // null operand in items[0] for the caller to fill.
  void parse_filters(std::vector<ExprPtr>& out, bool start_inline);
  // A name, a tuple of names (for/set), or with_namespace an attribute of a namespace (set).
  ExprPtr parse_assign_target(bool with_namespace, Names extra_end);

 private:
  // Guards the parser's own recursion (brackets, prefix operators) before any node exists to measure.
  struct Nesting {
    explicit Nesting(ExprParser& p) : p(p) {
      if (++p.nesting_ > kMaxExprHeight) p.fail("expression nested too deeply");
    }
    ~Nesting() { --p.nesting_; }
    ExprParser& p;
  };

  // Sets the height of a finished node and rejects expressions nested too deeply.
  static ExprPtr finish(ExprPtr node);
  static ExprPtr binary(std::string op, ExprPtr left, ExprPtr right, size_t offset);
  static ExprPtr unary(std::string op, ExprPtr operand, size_t offset);
  static ExprPtr literal(Value v, size_t offset);

  bool is_tuple_end(Names extra_end) const;
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary();
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_filter_expr(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr node);
  ExprPtr parse_subscribed();  // one subscript: an expression or a slice start:stop:step
  void parse_call_args(Expr& node);
  ExprPtr parse_call(ExprPtr callee);
  ExprPtr parse_test(ExprPtr operand);

  int nesting_ = 0;
};

}  // namespace whale::jinja
