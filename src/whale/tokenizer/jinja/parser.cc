#include "whale/tokenizer/jinja/parser.h"

#include <algorithm>

#include "whale/tokenizer/jinja/expr_parser.h"
#include "whale/tokenizer/jinja/lexer.h"

namespace whale::jinja {

std::string describe(const Token& t) {
  switch (t.type) {
    case TokenType::Text: return "template data";
    case TokenType::VariableBegin: return "'{{'";
    case TokenType::VariableEnd: return "end of print statement";
    case TokenType::BlockBegin: return "'{%'";
    case TokenType::BlockEnd: return "end of statement block";
    case TokenType::End: return "end of template";
    default: return "'" + t.value + "'";
  }
}

namespace {

// Block nesting limit, for the same reason as kMaxExprHeight.
constexpr int kMaxBlockDepth = 128;

// Records which of the special names caller / varargs / kwargs a macro body reads.
void scan_names(const Expr* e, Stmt& macro);
void scan_names(const Body& body, Stmt& macro) {
  for (const auto& s : body) {
    for (const Expr* e : {s->expr.get(), s->target.get(), s->cond.get()}) scan_names(e, macro);
    for (const auto& f : s->filters) scan_names(f.get(), macro);
    for (const auto& p : s->params) scan_names(p.default_value.get(), macro);
    scan_names(s->body, macro);
    scan_names(s->else_body, macro);
  }
}
void scan_names(const Expr* e, Stmt& macro) {
  if (!e) return;
  if (e->kind == ExprKind::Name) {
    macro.uses_caller |= e->name == "caller";
    macro.uses_varargs |= e->name == "varargs";
    macro.uses_kwargs |= e->name == "kwargs";
  }
  for (const auto& item : e->items) scan_names(item.get(), macro);
  for (const auto& kw : e->keywords) scan_names(kw.second.get(), macro);
}

class Parser : public ExprParser {
 public:
  explicit Parser(const std::string& source) : ExprParser(tokenize(source)) {}

  Body parse() { return subparse({}); }

 private:
  // ---- statements ----
  // Parses until one of the end tags; leaves the stream at that tag's name.
  Body subparse(Names end_tags) {
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == TokenType::Text) {
        auto s = std::make_unique<Stmt>(StmtKind::Text, t.offset);
        s->text = t.value;
        body.push_back(std::move(s));
        next();
      } else if (t.type == TokenType::VariableBegin) {
        next();
        auto s = std::make_unique<Stmt>(StmtKind::Output, t.offset);
        s->expr = parse_tuple(false, true, {}, false);
        if (cur().type != TokenType::VariableEnd) unexpected("end of print statement");
        next();
        body.push_back(std::move(s));
      } else if (t.type == TokenType::BlockBegin) {
        next();
        if (cur().type != TokenType::Name) unexpected("a tag name");
        if (contains(end_tags, cur().value)) return body;
        body.push_back(parse_statement(t.offset));
      } else {
        if (!open_.empty()) {
          throw TemplateError("unexpected end of template: the '" + open_.back().first + "' block is not closed",
                              open_.back().second);
        }
        return body;
      }
    }
  }

  StmtPtr parse_statement(size_t offset) {
    if (static_cast<int>(open_.size()) >= kMaxBlockDepth) fail("blocks nested too deeply");
    const std::string tag = cur().value;
    if (tag == "if") return parse_if(offset);
    if (tag == "for") return parse_for(offset);
    if (tag == "set") return parse_set(offset);
    if (tag == "macro") return parse_macro(offset);
    if (tag == "call") return parse_call_block(offset);
    if (tag == "filter") return parse_filter_block(offset);
    if (tag == "generation") return parse_scope(offset, "endgeneration");
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail("'" + tag + "' outside of a loop");
      next();
      expect_block_end();
      return std::make_unique<Stmt>(tag == "break" ? StmtKind::Break : StmtKind::Continue, offset);
    }
    std::string message = "unknown tag '" + tag + "'";
    if (!open_.empty()) message += " inside the '" + open_.back().first + "' block";
    fail(message);
  }

  // Parses the body of a block up to one of `ends`, returning the end tag found (consumed, with its %} unless
  // it is an 'elif').
  std::string block_body(Body& body, Names ends) {
    body = subparse(ends);
    std::string end = next().value;
    if (end != "elif") expect_block_end();
    return end;
  }

  StmtPtr parse_if(size_t offset) {
    next();
    auto node = std::make_unique<Stmt>(StmtKind::If, offset);
    open_.emplace_back("if", offset);
    Stmt* tail = node.get();
    while (true) {
      tail->expr = parse_tuple(false, false, {}, false);
      expect_block_end();
      const std::string end = block_body(tail->body, {"elif", "else", "endif"});
      if (end == "elif") {
        tail->else_body.push_back(std::make_unique<Stmt>(StmtKind::If, previous().offset));
        tail = tail->else_body.back().get();
        continue;
      }
      if (end == "else") block_body(tail->else_body, {"endif"});
      break;
    }
    open_.pop_back();
    return node;
  }

  StmtPtr parse_for(size_t offset) {
    next();
    auto node = std::make_unique<Stmt>(StmtKind::For, offset);
    node->target = parse_assign_target(false, {"in"});
    if (!skip_name("in")) unexpected("'in'");
    node->expr = parse_tuple(false, false, {"recursive"}, false);
    if (skip_name("if")) node->cond = parse_expression(true);
    if (is_name("recursive")) fail("recursive for loops are not supported");
    expect_block_end();
    open_.emplace_back("for", offset);
    ++loop_depth_;
    const std::string end = block_body(node->body, {"endfor", "else"});
    --loop_depth_;
    if (end == "else") block_body(node->else_body, {"endfor"});
    open_.pop_back();
    return node;
  }

  StmtPtr parse_set(size_t offset) {
    next();
    auto node = std::make_unique<Stmt>(StmtKind::Set, offset);
    node->target = parse_assign_target(true, {});
    if (skip_op("=")) {
      node->expr = parse_tuple(false, true, {}, false);
      expect_block_end();
      return node;
    }
    parse_filters(node->filters, false);
    expect_block_end();
    open_.emplace_back("set", offset);
    block_body(node->body, {"endset"});
    open_.pop_back();
    return node;
  }

  void parse_signature(std::vector<Param>& params) {
    expect_op("(");
    while (!is_op(")")) {
      if (!params.empty()) expect_op(",");
      Param p;
      p.name = expect_name();
      if (skip_op("=")) {
        p.default_value = parse_expression(true);
      } else if (!params.empty() && params.back().default_value) {
        fail("non-default argument follows default argument");
      }
      params.push_back(std::move(p));
    }
    next();
  }

  StmtPtr parse_macro(size_t offset) {
    next();
    auto node = std::make_unique<Stmt>(StmtKind::Macro, offset);
    node->text = expect_name();
    parse_signature(node->params);
    expect_block_end();
    open_.emplace_back("macro", offset);
    const int saved_depth = loop_depth_;
    loop_depth_ = 0;
    block_body(node->body, {"endmacro"});
    loop_depth_ = saved_depth;
    open_.pop_back();
    scan_names(node->body, *node);
    return node;
  }

  StmtPtr parse_call_block(size_t offset) {
    next();
    auto node = std::make_unique<Stmt>(StmtKind::CallBlock, offset);
    if (is_op("(")) parse_signature(node->params);
    node->expr = parse_expression(true);
    if (node->expr->kind != ExprKind::Call) throw TemplateError("expected a call", node->expr->offset);
    expect_block_end();
    open_.emplace_back("call", offset);
    block_body(node->body, {"endcall"});
    open_.pop_back();
    scan_names(node->body, *node);
    return node;
  }

  StmtPtr parse_filter_block(size_t offset) {
    next();
    auto node = std::make_unique<Stmt>(StmtKind::FilterBlock, offset);
    parse_filters(node->filters, true);
    expect_block_end();
    open_.emplace_back("filter", offset);
    block_body(node->body, {"endfilter"});
    open_.pop_back();
    return node;
  }

  StmtPtr parse_scope(size_t offset, const std::string& end_tag) {
    const std::string tag = next().value;
    expect_block_end();
    auto node = std::make_unique<Stmt>(StmtKind::Scope, offset);
    open_.emplace_back(tag, offset);
    block_body(node->body, {end_tag});
    open_.pop_back();
    return node;
  }

  // A name, a tuple of names (for/set), or with_namespace an attribute of a namespace (set).

  int loop_depth_ = 0;
  std::vector<std::pair<std::string, size_t>> open_;  // open blocks: tag and offset
};

}  // namespace

std::shared_ptr<const Template> parse_template(std::string_view source) {
  auto t = std::make_shared<Template>();
  t->source = normalize_newlines(source);
  t->body = Parser(t->source).parse();
  return t;
}

}  // namespace whale::jinja
