// jinja2's built-in tests (jinja2/tests.py) and the globals a chat template can call: range, namespace, dict,
// and the two that transformers adds, raise_exception and strftime_now.
#include <ctime>
#include <map>

#include "whale/tokenizer/jinja/builtins.h"
#include "whale/tokenizer/jinja/operators.h"
#include "whale/tokenizer/jinja/text.h"

namespace whale::jinja {
namespace {

const Value& other(const CallArgs& args, const std::string& test) {
  const Value* v = args.get(0, "other");
  if (!v) raise("test '" + test + "' needs an argument");
  return *v;
}

bool remainder_is(const Value& v, const Value& divisor, int64_t r) {
  return equals(binary_op("%", v, divisor), Value::integer(r));
}

bool same_object(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  if (a.identity() || b.identity()) return a.identity() == b.identity();
  return a.is_undefined() ? false : equals(a, b);
}

using Test = bool (*)(const Value& v, const CallArgs& args);

const std::map<std::string, Test, std::less<>>& tests() {
  static const std::map<std::string, Test, std::less<>> table = {
      {"defined", [](const Value& v, const CallArgs&) { return !v.is_undefined(); }},
      {"undefined", [](const Value& v, const CallArgs&) { return v.is_undefined(); }},
      {"none", [](const Value& v, const CallArgs&) { return v.is_none(); }},
      {"boolean", [](const Value& v, const CallArgs&) { return v.is_bool(); }},
      {"true", [](const Value& v, const CallArgs&) { return v.is_bool() && v.as_bool(); }},
      {"false", [](const Value& v, const CallArgs&) { return v.is_bool() && !v.as_bool(); }},
      {"string", [](const Value& v, const CallArgs&) { return v.is_string(); }},
      {"number", [](const Value& v, const CallArgs&) { return v.is_number(); }},  // bool is a Python Number
      {"integer", [](const Value& v, const CallArgs&) { return v.is_int(); }},
      {"float", [](const Value& v, const CallArgs&) { return v.is_float(); }},
      {"mapping", [](const Value& v, const CallArgs&) { return v.is_dict(); }},
      {"iterable", [](const Value& v, const CallArgs&) {
         return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
       }},
      {"sequence", [](const Value& v, const CallArgs&) {
         return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
       }},
      {"callable", [](const Value& v, const CallArgs&) { return v.is_function(); }},
      {"odd", [](const Value& v, const CallArgs&) { return remainder_is(v, Value::integer(2), 1); }},
      {"even", [](const Value& v, const CallArgs&) { return remainder_is(v, Value::integer(2), 0); }},
      {"divisibleby", [](const Value& v, const CallArgs& a) { return remainder_is(v, other(a, "divisibleby"), 0); }},
      {"eq", [](const Value& v, const CallArgs& a) { return equals(v, other(a, "eq")); }},
      {"ne", [](const Value& v, const CallArgs& a) { return !equals(v, other(a, "ne")); }},
      {"lt", [](const Value& v, const CallArgs& a) { return compare_op("<", v, other(a, "lt")); }},
      {"le", [](const Value& v, const CallArgs& a) { return compare_op("<=", v, other(a, "le")); }},
      {"gt", [](const Value& v, const CallArgs& a) { return compare_op(">", v, other(a, "gt")); }},
      {"ge", [](const Value& v, const CallArgs& a) { return compare_op(">=", v, other(a, "ge")); }},
      {"in", [](const Value& v, const CallArgs& a) { return contains(other(a, "in"), v); }},
      {"sameas", [](const Value& v, const CallArgs& a) { return same_object(v, other(a, "sameas")); }},
      {"lower", [](const Value& v, const CallArgs&) {
         const std::string s = to_str(v);
         return lower(s) == s && upper(s) != s;
       }},
      {"upper", [](const Value& v, const CallArgs&) {
         const std::string s = to_str(v);
         return upper(s) == s && lower(s) != s;
       }},
  };
  return table;
}

const std::map<std::string, std::string, std::less<>>& test_aliases() {
  static const std::map<std::string, std::string, std::less<>> aliases = {
      {"equalto", "eq"}, {"==", "eq"},  {"!=", "ne"},       {"lessthan", "lt"}, {"<", "lt"},
      {"<=", "le"},      {">", "gt"},   {"greaterthan", "gt"}, {">=", "ge"},
  };
  return aliases;
}

Value range(CallArgs& args) {
  const auto& p = args.positional;
  if (p.empty() || p.size() > 3) raise("range expected 1 to 3 arguments, got " + std::to_string(p.size()));
  const int64_t start = p.size() == 1 ? 0 : int_arg(&p[0], 0, "range() argument");
  const int64_t stop = int_arg(&p[p.size() == 1 ? 0 : 1], 0, "range() argument");
  const int64_t step = p.size() == 3 ? int_arg(&p[2], 1, "range() argument") : 1;
  if (step == 0) raise("range() arg 3 must not be zero");
  std::vector<Value> items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    // jinja2's sandbox refuses ranges over MAX_RANGE items.
    if (items.size() >= 100000) raise("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    items.push_back(Value::integer(i));
  }
  return Value::make_list(std::move(items));
}

// dict(mapping_or_pairs, **kwargs), which is also how jinja2 3.1 builds namespace().
Value make_dict(CallArgs& args, Value out) {
  if (args.positional.size() > 1) raise("expected at most 1 positional argument");
  if (!args.positional.empty()) {
    const Value& src = args.positional[0];
    if (src.kind() == Value::Kind::Dict) {
      for (const auto& [k, v] : src.dict().items) out.dict().set(k, v);
    } else {
      for (const Value& pair : iterate(src)) {
        const std::vector<Value> kv = iterate(pair);
        if (kv.size() != 2 || !kv[0].is_string()) raise("dictionary update sequence element has the wrong form");
        out.dict().set(kv[0].as_string(), kv[1]);
      }
    }
  }
  for (const auto& [k, v] : args.keyword) out.dict().set(k, v);
  return out;
}

}  // namespace

bool apply_test(const std::string& name, const Value& operand, CallArgs& args) {
  const auto alias = test_aliases().find(name);
  const std::string& key = alias == test_aliases().end() ? name : alias->second;
  const auto it = tests().find(key);
  if (it == tests().end()) raise("no test named '" + name + "'");
  return it->second(operand, args);
}

std::unordered_map<std::string, Value> make_globals() {
  std::unordered_map<std::string, Value> g;
  g["range"] = Value::make_function("range", range);
  g["namespace"] = Value::make_function("namespace", [](CallArgs& a) { return make_dict(a, Value::make_namespace()); });
  g["dict"] = Value::make_function("dict", [](CallArgs& a) { return make_dict(a, Value::make_dict()); });
  g["raise_exception"] = Value::make_function("raise_exception", [](CallArgs& a) -> Value {
    raise(a.positional.empty() ? std::string() : to_str(a.positional[0]));
  });
  g["strftime_now"] = Value::make_function("strftime_now", [](CallArgs& a) {
    const std::string* format = string_arg(a.get(0, "format"), "format");
    if (!format) raise("strftime_now() needs a format string");
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[256];
    const size_t n = std::strftime(buf, sizeof(buf), format->c_str(), &local);
    return Value::string(std::string(buf, n));
  });
  return g;
}

}  // namespace whale::jinja
