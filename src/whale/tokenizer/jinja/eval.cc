#include "whale/tokenizer/jinja/eval.h"

#include <unordered_map>
#include <utility>
#include <vector>

#include "whale/tokenizer/jinja/builtins.h"
#include "whale/tokenizer/jinja/operators.h"

namespace whale::jinja {
namespace {

class Scope;
using ScopePtr = std::shared_ptr<Scope>;

class Scope {
 public:
  explicit Scope(ScopePtr parent = nullptr) : parent_(std::move(parent)) {}

  const Value* find(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent_.get()) {
      for (const auto& [k, v] : s->vars_) {
        if (k == name) return &v;
      }
    }
    return nullptr;
  }

  void set(const std::string& name, Value value) {
    for (auto& [k, v] : vars_) {
      if (k == name) {
        v = std::move(value);
        return;
      }
    }
    vars_.emplace_back(name, std::move(value));
  }

 private:
  ScopePtr parent_;
  std::vector<std::pair<std::string, Value>> vars_;
};

enum class Flow { Normal, Break, Continue };

// Bounds the C++ recursion of evaluation (deep macro recursion, deeply nested templates).
constexpr int kMaxDepth = 1500;

class Interpreter {
 public:
  explicit Interpreter(const Template& t) : t_(t), globals_(make_globals()) {
    // Track namespaces so that reference cycles through them (ns.x = ns) are broken after rendering.
    const Value make_namespace = globals_["namespace"];
    globals_["namespace"] = Value::make_function("namespace", [this, make_namespace](CallArgs& a) {
      Value ns = make_namespace.function().call(a);
      namespaces_.push_back(ns);
      return ns;
    });
  }

  // Macros hold the scope they were defined in, and that scope holds them: break those cycles.
  ~Interpreter() {
    for (auto& closure : closures_) closure->reset();
    for (auto& ns : namespaces_) ns.dict().items.clear();
  }

  std::string run(const Value& context) {
    if (!context.is_dict()) raise("the template context must be a mapping");
    auto root = std::make_shared<Scope>();
    for (const auto& [k, v] : context.dict().items) root->set(k, v);
    std::string out;
    exec(t_.body, root, out);
    return out;
  }

 private:
  struct DepthGuard {
    explicit DepthGuard(int& depth) : depth(depth) {
      if (++depth > kMaxDepth) raise("template nesting or macro recursion too deep");
    }
    ~DepthGuard() { --depth; }
    int& depth;
  };

  // ---- statements ----
  Flow exec(const Body& body, const ScopePtr& scope, std::string& out) {
    for (const auto& s : body) {
      const Flow flow = exec_stmt(*s, scope, out);
      if (flow != Flow::Normal) return flow;
    }
    return Flow::Normal;
  }

  Flow exec_stmt(const Stmt& s, const ScopePtr& scope, std::string& out) {
    try {
      DepthGuard guard(depth_);
      return exec_inner(s, scope, out);
    } catch (TemplateError& e) {
      if (e.offset == std::string::npos) e.offset = s.offset;
      throw;
    }
  }

  Flow exec_inner(const Stmt& s, const ScopePtr& scope, std::string& out) {
    switch (s.kind) {
      case StmtKind::Text: out += s.text; break;
      case StmtKind::Output: out += to_str(eval(*s.expr, scope)); break;
      case StmtKind::If: return exec(eval(*s.expr, scope).truthy() ? s.body : s.else_body, scope, out);
      case StmtKind::For: exec_for(s, scope, out); break;
      case StmtKind::Set: exec_set(s, scope); break;
      case StmtKind::Macro: scope->set(s.text, make_macro(s, s.text, scope)); break;
      case StmtKind::CallBlock: {
        const Expr& call = *s.expr;
        Value callee = eval(*call.items[0], scope);
        CallArgs args = eval_args(call, scope);
        args.keyword.emplace_back("caller", make_macro(s, "caller", scope));
        out += to_str(invoke(callee, args));
        break;
      }
      case StmtKind::FilterBlock: {
        std::string body;
        exec(s.body, scope, body);
        out += to_str(apply_filters(s.filters, Value::string(std::move(body)), scope));
        break;
      }
      case StmtKind::Break: return Flow::Break;
      case StmtKind::Continue: return Flow::Continue;
      case StmtKind::Scope: return exec(s.body, scope, out);
    }
    return Flow::Normal;
  }

  void exec_for(const Stmt& s, const ScopePtr& scope, std::string& out) {
    std::vector<Value> items = iterate(eval(*s.expr, scope));
    if (s.cond) {  // jinja2 filters first, so loop.length and loop.last count only the kept items
      std::vector<Value> kept;
      for (Value& item : items) {
        auto test_scope = std::make_shared<Scope>(scope);
        assign(*s.target, item, *test_scope);
        if (eval(*s.cond, test_scope).truthy()) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      exec(s.else_body, std::make_shared<Scope>(scope), out);
      return;
    }
    for (size_t i = 0; i < items.size(); ++i) {
      auto iteration = std::make_shared<Scope>(scope);
      iteration->set("loop", make_loop(items, i));
      assign(*s.target, items[i], *iteration);
      if (exec(s.body, iteration, out) == Flow::Break) break;
    }
  }

  static Value make_loop(const std::vector<Value>& items, size_t i) {
    const auto n = static_cast<int64_t>(items.size());
    const auto index = static_cast<int64_t>(i);
    Value loop = Value::make_dict();
    DictData& d = loop.dict();
    d.items.reserve(12);
    d.items.emplace_back("index", Value::integer(index + 1));
    d.items.emplace_back("index0", Value::integer(index));
    d.items.emplace_back("revindex", Value::integer(n - index));
    d.items.emplace_back("revindex0", Value::integer(n - index - 1));
    d.items.emplace_back("first", Value::boolean(i == 0));
    d.items.emplace_back("last", Value::boolean(index == n - 1));
    d.items.emplace_back("length", Value::integer(n));
    d.items.emplace_back("depth", Value::integer(1));
    d.items.emplace_back("depth0", Value::integer(0));
    d.items.emplace_back("previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
    d.items.emplace_back("nextitem", index + 1 < n ? items[i + 1] : Value::undefined("there is no next item"));
    d.items.emplace_back("cycle", Value::make_function("cycle", [i](CallArgs& a) {
      if (a.positional.empty()) raise("no items for cycling given");
      return a.positional[i % a.positional.size()];
    }));
    return loop;
  }

  // Binds a Name or a Tuple of Names (Python unpacking).
  static void assign(const Expr& target, const Value& value, Scope& scope) {
    if (target.kind == ExprKind::Name) {
      scope.set(target.name, value);
      return;
    }
    const std::vector<Value> values = iterate(value);
    const size_t want = target.items.size();
    if (values.size() > want) raise("too many values to unpack (expected " + std::to_string(want) + ")");
    if (values.size() < want) {
      raise("not enough values to unpack (expected " + std::to_string(want) + ", got " +
            std::to_string(values.size()) + ")");
    }
    for (size_t i = 0; i < want; ++i) scope.set(target.items[i]->name, values[i]);
  }

  void exec_set(const Stmt& s, const ScopePtr& scope) {
    Value value;
    if (s.expr) {
      value = eval(*s.expr, scope);
    } else {
      std::string body;
      exec(s.body, scope, body);
      value = apply_filters(s.filters, Value::string(std::move(body)), scope);
    }
    if (s.target->kind == ExprKind::Getattr) {
      Value ns = eval(*s.target->items[0], scope);
      if (!ns.is_namespace()) raise("cannot assign attribute on non-namespace object");
      ns.dict().set(s.target->name, std::move(value));
      return;
    }
    assign(*s.target, value, *scope);
  }

  // A macro, or the `caller` of a call block: a function over `body` that sees the defining scope.
  Value make_macro(const Stmt& m, const std::string& name, const ScopePtr& scope) {
    auto closure = std::make_shared<ScopePtr>(scope);
    closures_.push_back(closure);
    return Value::make_function(name, [this, &m, name, closure](CallArgs& args) {
      return call_macro(m, name, *closure, args);
    });
  }

  Value call_macro(const Stmt& m, const std::string& name, const ScopePtr& parent, CallArgs& args) {
    DepthGuard guard(depth_);
    auto s = std::make_shared<Scope>(parent);
    const auto& params = m.params;
    std::vector<bool> bound(params.size(), false);
    std::vector<Value> varargs;
    for (size_t i = 0; i < args.positional.size(); ++i) {
      if (i < params.size()) {
        s->set(params[i].name, args.positional[i]);
        bound[i] = true;
      } else {
        varargs.push_back(args.positional[i]);
      }
    }
    if (!varargs.empty() && !m.uses_varargs) {
      raise("macro '" + name + "' takes not more than " + std::to_string(params.size()) + " argument(s)");
    }
    Value kwargs = Value::make_dict();
    for (auto& [key, value] : args.keyword) {
      size_t p = 0;
      while (p < params.size() && params[p].name != key) ++p;
      if (p < params.size()) {
        if (bound[p]) raise("macro '" + name + "' got multiple values for argument '" + key + "'");
        s->set(key, value);
        bound[p] = true;
      } else if (key == "caller") {
        s->set("caller", value);
      } else if (m.uses_kwargs) {
        kwargs.dict().set(key, value);
      } else {
        raise("macro '" + name + "' takes no keyword argument '" + key + "'");
      }
    }
    for (size_t p = 0; p < params.size(); ++p) {
      if (bound[p]) continue;
      s->set(params[p].name, params[p].default_value
                                 ? eval(*params[p].default_value, s)
                                 : Value::undefined("parameter '" + params[p].name + "' was not provided"));
    }
    if (m.uses_varargs) s->set("varargs", Value::make_tuple(std::move(varargs)));
    if (m.uses_kwargs) s->set("kwargs", kwargs);
    std::string out;
    exec(m.body, s, out);
    return Value::string(std::move(out));
  }

  // ---- expressions ----
  Value eval(const Expr& e, const ScopePtr& scope) {
    try {
      DepthGuard guard(depth_);
      return eval_inner(e, scope);
    } catch (TemplateError& err) {
      if (err.offset == std::string::npos) err.offset = e.offset;
      throw;
    }
  }

  Value lookup(const std::string& name, const ScopePtr& scope) const {
    if (const Value* v = scope->find(name)) return *v;
    if (auto it = globals_.find(name); it != globals_.end()) return it->second;
    return Value::undefined("'" + name + "' is undefined");
  }

  static Value invoke(const Value& callee, CallArgs& args) {
    require_defined(callee);
    if (!callee.is_function()) raise("'" + type_name(callee) + "' object is not callable");
    return callee.function().call(args);
  }

  // Arguments of a Call, Filter or Test: items[1..] are positional, then the keywords.
  CallArgs eval_args(const Expr& e, const ScopePtr& scope) {
    CallArgs args;
    for (size_t i = 1; i < e.items.size(); ++i) args.positional.push_back(eval(*e.items[i], scope));
    for (const auto& [key, expr] : e.keywords) args.keyword.emplace_back(key, eval(*expr, scope));
    return args;
  }

  Value apply_filters(const std::vector<ExprPtr>& filters, Value value, const ScopePtr& scope) {
    for (const auto& f : filters) {
      CallArgs args = eval_args(*f, scope);
      value = apply_filter(f->name, value, args);
    }
    return value;
  }

  Value eval_inner(const Expr& e, const ScopePtr& scope) {
    switch (e.kind) {
      case ExprKind::Literal: return e.value;
      case ExprKind::Name: return lookup(e.name, scope);
      case ExprKind::List:
      case ExprKind::Tuple: {
        std::vector<Value> items;
        items.reserve(e.items.size());
        for (const auto& item : e.items) items.push_back(eval(*item, scope));
        return e.kind == ExprKind::Tuple ? Value::make_tuple(std::move(items)) : Value::make_list(std::move(items));
      }
      case ExprKind::Dict: {
        Value d = Value::make_dict();
        for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
          const Value key = eval(*e.items[i], scope);
          if (!key.is_string()) raise("dict keys must be strings, not " + type_name(key));
          d.dict().set(key.as_string(), eval(*e.items[i + 1], scope));
        }
        return d;
      }
      case ExprKind::Getattr: return get_attribute(eval(*e.items[0], scope), e.name);
      case ExprKind::Getitem: {
        const Value obj = eval(*e.items[0], scope);
        return get_item(obj, eval(*e.items[1], scope));
      }
      case ExprKind::Slice: {
        const Value obj = eval(*e.items[0], scope);
        Value bounds[3];
        for (int i = 0; i < 3; ++i) bounds[i] = e.items[i + 1] ? eval(*e.items[i + 1], scope) : Value::none();
        return slice_value(obj, bounds[0], bounds[1], bounds[2]);
      }
      case ExprKind::Call: {
        const Value callee = eval(*e.items[0], scope);
        CallArgs args = eval_args(e, scope);
        return invoke(callee, args);
      }
      case ExprKind::Filter: {
        const Value operand = eval(*e.items[0], scope);
        CallArgs args = eval_args(e, scope);
        return apply_filter(e.name, operand, args);
      }
      case ExprKind::Test: {
        const Value operand = eval(*e.items[0], scope);
        CallArgs args = eval_args(e, scope);
        return Value::boolean(apply_test(e.name, operand, args));
      }
      case ExprKind::Unary: {
        const Value operand = eval(*e.items[0], scope);
        return e.name == "not" ? Value::boolean(!operand.truthy()) : unary_op(e.name, operand);
      }
      case ExprKind::Binary: {
        Value left = eval(*e.items[0], scope);
        if (e.name == "and") return left.truthy() ? eval(*e.items[1], scope) : left;
        if (e.name == "or") return left.truthy() ? left : eval(*e.items[1], scope);
        return binary_op(e.name, left, eval(*e.items[1], scope));
      }
      case ExprKind::Compare: {
        Value left = eval(*e.items[0], scope);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = eval(*e.items[i + 1], scope);
          if (!compare_op(e.ops[i], left, right)) return Value::boolean(false);
          left = std::move(right);
        }
        return Value::boolean(true);
      }
      case ExprKind::CondExpr:
        if (eval(*e.items[1], scope).truthy()) return eval(*e.items[0], scope);
        if (e.items[2]) return eval(*e.items[2], scope);
        return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
    raise("unknown expression");
  }

  const Template& t_;
  std::unordered_map<std::string, Value> globals_;
  std::vector<std::shared_ptr<ScopePtr>> closures_;
  std::vector<Value> namespaces_;
  int depth_ = 0;
};

}  // namespace

std::string render(const Template& t, const Value& context) { return Interpreter(t).run(context); }

}  // namespace whale::jinja
