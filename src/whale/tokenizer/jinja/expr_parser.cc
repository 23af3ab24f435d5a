// Expressions, with jinja2's grammar and operator precedence (parser.py): or < and < not < comparisons < + - <
// ~ < * / // % < ** < unary - + < filters, tests and calls < postfix . [] () < primaries.
#include "whale/tokenizer/jinja/expr_parser.h"

#include <fmt/format.h>

namespace whale::jinja {

ExprPtr ExprParser::parse_assign_target(bool with_namespace, Names extra_end) {
  const size_t offset = cur().offset;
  if (with_namespace && cur().type == TokenType::Name && peek().type == TokenType::Operator && peek().value == ".") {
    auto node = std::make_unique<Expr>(ExprKind::Getattr, offset);
    auto object = std::make_unique<Expr>(ExprKind::Name, offset);
    object->name = next().value;
    next();
    node->name = expect_name();
    node->items.push_back(std::move(object));
    return node;
  }
  ExprPtr target = parse_tuple(true, true, extra_end, false);
  const auto assignable = [](const Expr& e) {
    return e.kind == ExprKind::Name && e.name != "true" && e.name != "false" && e.name != "none";
  };
  bool ok = assignable(*target);
  if (target->kind == ExprKind::Tuple) {
    ok = std::all_of(target->items.begin(), target->items.end(), [&](const ExprPtr& e) { return assignable(*e); });
  }
  if (!ok) throw TemplateError("can't assign to this expression", offset);
  return target;
}

bool ExprParser::is_tuple_end(Names extra_end) const {
  const Token& t = cur();
  if (t.type == TokenType::VariableEnd || t.type == TokenType::BlockEnd || is_op(")")) return true;
  return t.type == TokenType::Name && contains(extra_end, t.value);
}

ExprPtr ExprParser::parse_tuple(bool simplified, bool with_condexpr, Names extra_end, bool explicit_parentheses) {
  const size_t offset = cur().offset;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) expect_op(",");
    if (is_tuple_end(extra_end)) break;
    items.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
    if (!is_op(",")) break;
    is_tuple = true;
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    if (!explicit_parentheses) unexpected("an expression");
  }
  auto node = std::make_unique<Expr>(ExprKind::Tuple, offset);
  node->items = std::move(items);
  return finish(std::move(node));
}

ExprPtr ExprParser::parse_expression(bool with_condexpr) {
  Nesting nesting(*this);
  if (!with_condexpr) return parse_or();
  ExprPtr expr = parse_or();
  while (is_name("if")) {
    const size_t offset = next().offset;
    auto node = std::make_unique<Expr>(ExprKind::CondExpr, offset);
    ExprPtr test = parse_or();
    ExprPtr otherwise = skip_name("else") ? parse_expression(true) : nullptr;
    node->items.push_back(std::move(expr));
    node->items.push_back(std::move(test));
    node->items.push_back(std::move(otherwise));
    expr = finish(std::move(node));
  }
  return expr;
}

ExprPtr ExprParser::finish(ExprPtr node) {
  int h = 0;
  for (const auto& item : node->items) h = item ? std::max(h, item->height) : h;
  for (const auto& kw : node->keywords) h = std::max(h, kw.second->height);
  node->height = h + 1;
  if (node->height > kMaxExprHeight) throw TemplateError("expression nested too deeply", node->offset);
  return node;
}

ExprPtr ExprParser::binary(std::string op, ExprPtr left, ExprPtr right, size_t offset) {
  auto node = std::make_unique<Expr>(ExprKind::Binary, offset);
  node->name = std::move(op);
  node->items.push_back(std::move(left));
  node->items.push_back(std::move(right));
  return finish(std::move(node));
}

ExprPtr ExprParser::parse_or() {
  ExprPtr left = parse_and();
  while (is_name("or")) {
    const size_t offset = next().offset;
    left = binary("or", std::move(left), parse_and(), offset);
  }
  return left;
}

ExprPtr ExprParser::parse_and() {
  ExprPtr left = parse_not();
  while (is_name("and")) {
    const size_t offset = next().offset;
    left = binary("and", std::move(left), parse_not(), offset);
  }
  return left;
}

ExprPtr ExprParser::unary(std::string op, ExprPtr operand, size_t offset) {
  auto node = std::make_unique<Expr>(ExprKind::Unary, offset);
  node->name = std::move(op);
  node->items.push_back(std::move(operand));
  return finish(std::move(node));
}

ExprPtr ExprParser::parse_not() {
  if (is_name("not")) {
    Nesting nesting(*this);
    const size_t offset = next().offset;
    return unary("not", parse_not(), offset);
  }
  return parse_compare();
}

ExprPtr ExprParser::parse_compare() {
  const size_t offset = cur().offset;
  ExprPtr first = parse_math1();
  auto node = std::make_unique<Expr>(ExprKind::Compare, offset);
  node->items.push_back(std::move(first));
  while (true) {
    static constexpr std::string_view kOps[] = {"==", "!=", "<", "<=", ">", ">="};
    const Token& t = cur();
    std::string op;
    if (t.type == TokenType::Operator && std::find(std::begin(kOps), std::end(kOps), t.value) != std::end(kOps)) {
      op = next().value;
    } else if (is_name("in")) {
      next();
      op = "in";
    } else if (is_name("not") && peek().type == TokenType::Name && peek().value == "in") {
      next();
      next();
      op = "notin";
    } else {
      break;
    }
    node->ops.push_back(op);
    node->items.push_back(parse_math1());
  }
  if (node->ops.empty()) return std::move(node->items[0]);
  return finish(std::move(node));
}

ExprPtr ExprParser::parse_math1() {
  ExprPtr left = parse_concat();
  while (is_op("+") || is_op("-")) {
    const Token& op = next();
    left = binary(op.value, std::move(left), parse_concat(), op.offset);
  }
  return left;
}

ExprPtr ExprParser::parse_concat() {
  ExprPtr left = parse_math2();
  while (is_op("~")) {
    const size_t offset = next().offset;
    left = binary("~", std::move(left), parse_math2(), offset);
  }
  return left;
}

ExprPtr ExprParser::parse_math2() {
  ExprPtr left = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    const Token& op = next();
    left = binary(op.value, std::move(left), parse_pow(), op.offset);
  }
  return left;
}

ExprPtr ExprParser::parse_pow() {
  ExprPtr left = parse_unary(true);
  while (is_op("**")) {
    const size_t offset = next().offset;
    left = binary("**", std::move(left), parse_unary(true), offset);
  }
  return left;
}

ExprPtr ExprParser::parse_unary(bool with_filter) {
  ExprPtr node;
  if (is_op("-") || is_op("+")) {
    Nesting nesting(*this);
    const Token& op = next();
    node = unary(op.value, parse_unary(false), op.offset);
  } else {
    node = parse_postfix(parse_primary());
  }
  return with_filter ? parse_filter_expr(std::move(node)) : std::move(node);
}

ExprPtr ExprParser::literal(Value v, size_t offset) {
  auto node = std::make_unique<Expr>(ExprKind::Literal, offset);
  node->value = std::move(v);
  return node;
}

ExprPtr ExprParser::parse_primary() {
  const Token& t = cur();
  const size_t offset = t.offset;
  switch (t.type) {
    case TokenType::Name: {
      next();
      if (t.value == "true" || t.value == "True") return literal(Value::boolean(true), offset);
      if (t.value == "false" || t.value == "False") return literal(Value::boolean(false), offset);
      if (t.value == "none" || t.value == "None") return literal(Value::none(), offset);
      auto node = std::make_unique<Expr>(ExprKind::Name, offset);
      node->name = t.value;
      return node;
    }
    case TokenType::String: {
      std::string s;
      while (cur().type == TokenType::String) s += next().value;
      return literal(Value::string(std::move(s)), offset);
    }
    case TokenType::Integer: return literal(Value::integer(next().integer), offset);
    case TokenType::Float: return literal(Value::number(next().number), offset);
    default: break;
  }
  if (skip_op("(")) {
    ExprPtr node = parse_tuple(false, true, {}, true);
    expect_op(")");
    return node;
  }
  if (is_op("[") || is_op("{")) {
    const bool is_dict = next().value == "{";
    auto node = std::make_unique<Expr>(is_dict ? ExprKind::Dict : ExprKind::List, offset);
    const std::string close = is_dict ? "}" : "]";
    while (!is_op(close)) {
      if (!node->items.empty()) {
        expect_op(",");
        if (is_op(close)) break;
      }
      node->items.push_back(parse_expression(true));
      if (is_dict) {
        expect_op(":");
        node->items.push_back(parse_expression(true));
      }
    }
    next();
    return finish(std::move(node));
  }
  fail("unexpected " + describe(t));
}

ExprPtr ExprParser::parse_postfix(ExprPtr node) {
  while (true) {
    if (is_op(".") || is_op("[")) {
      node = parse_subscript(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr ExprParser::parse_filter_expr(ExprPtr node) {
  while (true) {
    if (is_op("|")) {
      std::vector<ExprPtr> filters;
      parse_filters(filters, false);
      for (auto& f : filters) {
        f->items[0] = std::move(node);
        node = finish(std::move(f));
      }
    } else if (is_name("is")) {
      node = parse_test(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

ExprPtr ExprParser::parse_subscript(ExprPtr node) {
  const Token& t = next();
  if (t.value == ".") {
    const Token& attr = next();
    if (attr.type == TokenType::Name) {
      auto out = std::make_unique<Expr>(ExprKind::Getattr, t.offset);
      out->name = attr.value;
      out->items.push_back(std::move(node));
      return finish(std::move(out));
    }
    if (attr.type != TokenType::Integer) throw TemplateError("expected name or number", attr.offset);
    auto out = std::make_unique<Expr>(ExprKind::Getitem, t.offset);
    out->items.push_back(std::move(node));
    out->items.push_back(literal(Value::integer(attr.integer), attr.offset));
    return finish(std::move(out));
  }
  std::vector<ExprPtr> args;
  while (!is_op("]")) {
    if (!args.empty()) expect_op(",");
    args.push_back(parse_subscribed());
  }
  next();
  if (args.size() == 1 && args[0]->kind == ExprKind::Slice) {
    args[0]->items[0] = std::move(node);
    return finish(std::move(args[0]));
  }
  auto out = std::make_unique<Expr>(ExprKind::Getitem, t.offset);
  out->items.push_back(std::move(node));
  if (args.size() == 1) {
    out->items.push_back(std::move(args[0]));
  } else {
    auto key = std::make_unique<Expr>(ExprKind::Tuple, t.offset);
    key->items = std::move(args);
    out->items.push_back(finish(std::move(key)));
  }
  return finish(std::move(out));
}

ExprPtr ExprParser::parse_subscribed() {
  const size_t offset = cur().offset;
  ExprPtr start;
  if (!is_op(":")) {
    start = parse_expression(true);
    if (!is_op(":")) return start;
  }
  next();
  auto slice = std::make_unique<Expr>(ExprKind::Slice, offset);
  slice->items.push_back(nullptr);
  slice->items.push_back(std::move(start));
  slice->items.push_back(is_op("]") || is_op(",") || is_op(":") ? nullptr : parse_expression(true));
  ExprPtr step;
  if (skip_op(":") && !is_op("]") && !is_op(",")) step = parse_expression(true);
  slice->items.push_back(std::move(step));
  return slice;
}

void ExprParser::parse_call_args(Expr& node) {
  expect_op("(");
  bool require_comma = false;
  while (!is_op(")")) {
    if (require_comma) {
      expect_op(",");
      if (is_op(")")) break;
    }
    if (is_op("*") || is_op("**")) fail("argument unpacking with * and ** is not supported");
    if (cur().type == TokenType::Name && peek().type == TokenType::Operator && peek().value == "=") {
      std::string key = next().value;
      next();
      node.keywords.emplace_back(std::move(key), parse_expression(true));
    } else {
      if (!node.keywords.empty()) fail("positional argument follows keyword argument");
      node.items.push_back(parse_expression(true));
    }
    require_comma = true;
  }
  next();
}

ExprPtr ExprParser::parse_call(ExprPtr callee) {
  auto node = std::make_unique<Expr>(ExprKind::Call, callee->offset);
  node->items.push_back(std::move(callee));
  parse_call_args(*node);
  return finish(std::move(node));
}

void ExprParser::parse_filters(std::vector<ExprPtr>& out, bool start_inline) {
  while (is_op("|") || start_inline) {
    if (!start_inline) next();
    start_inline = false;
    auto node = std::make_unique<Expr>(ExprKind::Filter, cur().offset);
    node->name = expect_name();
    while (skip_op(".")) node->name += fmt::format(".{}", expect_name());
    node->items.push_back(nullptr);
    if (is_op("(")) parse_call_args(*node);
    out.push_back(std::move(node));
  }
}

ExprPtr ExprParser::parse_test(ExprPtr operand) {
  const size_t offset = next().offset;
  const bool negated = skip_name("not");
  auto node = std::make_unique<Expr>(ExprKind::Test, cur().offset);
  node->name = expect_name();
  while (skip_op(".")) node->name += fmt::format(".{}", expect_name());
  node->items.push_back(std::move(operand));
  const Token& t = cur();
  const bool arg_start = t.type == TokenType::Name || t.type == TokenType::String ||
                         t.type == TokenType::Integer || t.type == TokenType::Float || is_op("[") || is_op("{");
  if (is_op("(")) {
    parse_call_args(*node);
  } else if (arg_start && !is_name("else") && !is_name("or") && !is_name("and")) {
    if (is_name("is")) fail("you cannot chain multiple tests with is");
    node->items.push_back(parse_postfix(parse_primary()));
  }
  node = finish(std::move(node));
  return negated ? unary("not", std::move(node), offset) : std::move(node);
}

}  // namespace whale::jinja
