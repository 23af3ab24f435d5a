// Runtime values of the Jinja interpreter, with the Python semantics that jinja2 gives them: lists and dicts are
// shared by reference, dicts keep insertion order, ints are Python ints (here 64-bit, overflow is an error),
// and an undefined value remembers why it is undefined so that using it wrongly gives jinja2's message.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace whale::jinja {

// An error while parsing or rendering. `offset` is a byte offset into the (newline-normalized) template, or npos
// until the innermost template node that catches it fills it in.
class TemplateError : public std::runtime_error {
 public:
  explicit TemplateError(const std::string& message, size_t offset = std::string::npos)
      : std::runtime_error(message), offset(offset) {}
  size_t offset;
};

[[noreturn]] void raise(const std::string& message);

class Value;

struct ListData {
  std::vector<Value> items;
  bool is_tuple = false;
};

// A Python dict with string keys (insertion-ordered), or a jinja2 namespace() object.
struct DictData {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;

  const Value* find(std::string_view key) const;
  void set(const std::string& key, Value value);
};

// Positional and keyword arguments of a call, a filter or a test.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // The argument at position `index`, else the keyword argument `name`; nullptr when neither was given.
  const Value* get(size_t index, std::string_view name) const;
};

struct Function {
  std::string name;
  std::function<Value(CallArgs&)> call;
};

class Value {
 public:
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Function };

  Value() = default;  // undefined
  static Value undefined(std::string hint = {});
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double d);
  static Value string(std::string s);
  static Value make_list(std::vector<Value> items = {});
  static Value make_tuple(std::vector<Value> items);
  static Value make_dict();
  static Value make_namespace();
  static Value make_function(std::string name, std::function<Value(CallArgs&)> call);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::Undefined; }
  bool is_none() const { return kind_ == Kind::None; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_int() const { return kind_ == Kind::Int; }
  bool is_float() const { return kind_ == Kind::Float; }
  bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_list() const { return kind_ == Kind::List; }  // list or tuple
  bool is_tuple() const { return kind_ == Kind::List && list().is_tuple; }
  bool is_dict() const { return kind_ == Kind::Dict && !dict().is_namespace; }
  bool is_namespace() const { return kind_ == Kind::Dict && dict().is_namespace; }
  bool is_function() const { return kind_ == Kind::Function; }

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const { return is_bool() ? as_bool() : std::get<int64_t>(data_); }
  double as_float() const;  // any number
  const std::string& as_string() const { return std::get<std::string>(data_); }
  const std::string& undefined_hint() const { return std::get<std::string>(data_); }
  ListData& list() const { return *std::get<std::shared_ptr<ListData>>(data_); }
  DictData& dict() const { return *std::get<std::shared_ptr<DictData>>(data_); }
  const Function& function() const { return *std::get<std::shared_ptr<Function>>(data_); }
  const void* identity() const;  // the shared object of a list, dict or function

  bool truthy() const;

 private:
  Kind kind_ = Kind::Undefined;
  std::variant<std::monostate, bool, int64_t, double, std::string, std::shared_ptr<ListData>,
               std::shared_ptr<DictData>, std::shared_ptr<Function>>
      data_;
};

// Python's type(x).__name__, as used in jinja2's error messages.
std::string type_name(const Value& v);

// Raises jinja2's UndefinedError if v is undefined (using it in arithmetic, calling or subscripting it).
void require_defined(const Value& v);

// str(v) as jinja2 prints it: undefined is "", None is "None", floats use Python's repr.
std::string to_str(const Value& v);
// repr(v), as Python prints list and dict elements.
std::string to_repr(const Value& v);
std::string float_repr(double d);

// Python ==; undefined equals only undefined.
bool equals(const Value& a, const Value& b);
// Python's ordering (<0, 0, >0) for numbers, strings and sequences; raises for other pairs.
int compare(const Value& a, const Value& b, std::string_view op = "<");

// json.dumps with transformers' chat-template defaults (ensure_ascii=False, separators ", " and ": ").
struct JsonOptions {
  std::string indent;  // empty: one line
  bool indent_set = false;
  bool ensure_ascii = false;
  bool sort_keys = false;
  std::string item_separator = ", ";
  std::string key_separator = ": ";
};
std::string to_json(const Value& v, const JsonOptions& options);

// JSON data to values: objects keep the key order of the json type (sorted for nlohmann::json, insertion order
// for nlohmann::ordered_json).
Value from_json(const nlohmann::json& j);
Value from_json(const nlohmann::ordered_json& j);

}  // namespace whale::jinja
