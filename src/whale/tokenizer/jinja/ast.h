// The syntax tree of a parsed template: expressions and statements, each with the byte offset of its source so
// that runtime errors can name a line and column. The shapes follow jinja2's nodes.py.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "whale/tokenizer/jinja/value.h"

namespace whale::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class ExprKind {
  Literal,    // value
  Name,       // name
  List,       // items
  Tuple,      // items
  Dict,       // items: key0, value0, key1, value1, ...
  Getattr,    // items[0].name
  Getitem,    // items[0][items[1]]
  Slice,      // items[0][items[1]:items[2]:items[3]], absent parts are null
  Call,       // items[0](items[1..], keywords)
  Filter,     // items[0] | name(items[1..], keywords); items[0] is null inside {% filter %} and block set
  Test,       // items[0] is name(items[1..], keywords)
  Unary,      // name ("not", "-", "+") items[0]
  Binary,     // items[0] name items[1] for + - * / // % ** ~ and or
  Compare,    // items[0] ops[0] items[1] ops[1] items[2] ... (== != < <= > >= in notin)
  CondExpr,   // items[0] if items[1] else items[2] (items[2] may be null)
};

struct Expr {
  ExprKind kind;
  size_t offset = 0;
  int height = 1;                // of this subtree; the parser bounds it so recursion stays shallow
  Value value;                   // Literal
  std::string name;              // Name, Getattr, Filter, Test, operator of Unary/Binary
  std::vector<ExprPtr> items;
  std::vector<std::string> ops;  // Compare
  std::vector<std::pair<std::string, ExprPtr>> keywords;  // Call, Filter, Test

  Expr(ExprKind kind, size_t offset) : kind(kind), offset(offset) {}
};

enum class StmtKind {
  Text,      // text
  Output,    // {{ expr }}
  If,        // expr: test; body; else_body (an elif is an If alone in else_body)
  For,       // target in expr [if cond]; body; else_body
  Set,       // target = expr, or block set: target, filters, body
  Macro,     // name(params) body
  CallBlock, // {% call(params) expr %} body
  FilterBlock,  // {% filter filters %} body
  Break,
  Continue,
  Scope,     // a body rendered as is (transformers' {% generation %})
};

struct Param {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Stmt {
  StmtKind kind;
  size_t offset = 0;
  std::string text;               // Text; Macro name
  ExprPtr expr;                   // Output, If test, For iterable, Set value, CallBlock call
  ExprPtr target;                 // For / Set target: Name, Tuple of Names, or Getattr on a namespace
  ExprPtr cond;                   // For filter condition
  std::vector<ExprPtr> filters;   // FilterBlock and block Set: Filter nodes applied in order
  std::vector<Param> params;      // Macro and CallBlock
  bool uses_caller = false, uses_varargs = false, uses_kwargs = false;  // Macro and CallBlock bodies
  Body body, else_body;

  Stmt(StmtKind kind, size_t offset) : kind(kind), offset(offset) {}
};

struct Template {
  std::string source;  // newline-normalized
  Body body;
};

}  // namespace whale::jinja
