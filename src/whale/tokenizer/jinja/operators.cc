#include "whale/tokenizer/jinja/operators.h"

#include <cmath>
#include <cstdint>
#include <cstdio>

#include "whale/tokenizer/jinja/builtins.h"

namespace whale::jinja {
namespace {

[[noreturn]] void unsupported(std::string_view op, const Value& a, const Value& b) {
  raise("unsupported operand type(s) for " + std::string(op) + ": '" + type_name(a) + "' and '" + type_name(b) +
        "'");
}

void check_overflow(bool overflow) {
  if (overflow) raise("integer overflow");
}

int64_t int_pow(int64_t base, int64_t exp) {
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) check_overflow(__builtin_mul_overflow(result, base, &result));
    exp >>= 1;
    if (exp > 0) check_overflow(__builtin_mul_overflow(base, base, &base));
  }
  return result;
}

// Python's float floor division and modulo (Objects/floatobject.c, float_divmod).
void float_divmod(double a, double b, double& floordiv, double& mod) {
  if (b == 0.0) raise("float divmod() by zero");
  mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0.0) {
    if ((b < 0) != (mod < 0)) {
      mod += b;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, b);
  }
  if (div != 0.0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, a / b);
  }
}

Value arithmetic(std::string_view op, const Value& a, const Value& b) {
  if (!a.is_float() && !b.is_float()) {
    const int64_t x = a.as_int(), y = b.as_int();
    int64_t r = 0;
    if (op == "+" || op == "-" || op == "*") {
      check_overflow(op == "+"   ? __builtin_add_overflow(x, y, &r)
                     : op == "-" ? __builtin_sub_overflow(x, y, &r)
                                 : __builtin_mul_overflow(x, y, &r));
      return Value::integer(r);
    }
    if (op == "/") {
      if (y == 0) raise("division by zero");
      return Value::number(static_cast<double>(x) / static_cast<double>(y));
    }
    if (op == "//" || op == "%") {
      if (y == 0) raise("integer division or modulo by zero");
      if (x == INT64_MIN && y == -1) raise("integer overflow");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --q;
        m += y;
      }
      return Value::integer(op == "//" ? q : m);
    }
    if (op == "**") {
      if (y < 0) {
        if (x == 0) raise("0.0 cannot be raised to a negative power");
        return Value::number(std::pow(static_cast<double>(x), static_cast<double>(y)));
      }
      return Value::integer(int_pow(x, y));
    }
  }
  const double x = a.as_float(), y = b.as_float();
  if (op == "+") return Value::number(x + y);
  if (op == "-") return Value::number(x - y);
  if (op == "*") return Value::number(x * y);
  if (op == "/") {
    if (y == 0.0) raise("float division by zero");
    return Value::number(x / y);
  }
  if (op == "//" || op == "%") {
    if (y == 0.0) raise(op == "//" ? "float floor division by zero" : "float modulo");
    double q = 0, m = 0;
    float_divmod(x, y, q, m);
    return Value::number(op == "//" ? q : m);
  }
  if (op == "**") {
    if (x == 0.0 && y < 0) raise("0.0 cannot be raised to a negative power");
    if (x < 0 && y != std::floor(y)) raise("negative number cannot be raised to a fractional power");
    return Value::number(std::pow(x, y));
  }
  unsupported(op, a, b);
}

Value repeat(const Value& seq, int64_t n) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += seq.as_string();
    return Value::string(std::move(out));
  }
  std::vector<Value> items;
  for (int64_t i = 0; i < n; ++i) items.insert(items.end(), seq.list().items.begin(), seq.list().items.end());
  return seq.is_tuple() ? Value::make_tuple(std::move(items)) : Value::make_list(std::move(items));
}

}  // namespace

Value binary_op(std::string_view op, const Value& a, const Value& b) {
  if (op == "~") return Value::string(to_str(a) + to_str(b));
  require_defined(a);
  require_defined(b);
  if (a.is_number() && b.is_number()) return arithmetic(op, a, b);
  if (op == "+") {
    if (a.is_string() && b.is_string()) return Value::string(a.as_string() + b.as_string());
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      std::vector<Value> items = a.list().items;
      items.insert(items.end(), b.list().items.begin(), b.list().items.end());
      return a.is_tuple() ? Value::make_tuple(std::move(items)) : Value::make_list(std::move(items));
    }
    if (a.is_string()) raise("can only concatenate str (not \"" + type_name(b) + "\") to str");
    if (a.is_list() && !a.is_tuple()) raise("can only concatenate list (not \"" + type_name(b) + "\") to list");
  }
  if (op == "*") {
    const bool a_int = a.is_int() || a.is_bool(), b_int = b.is_int() || b.is_bool();
    if ((a.is_string() || a.is_list()) && b_int) return repeat(a, b.as_int());
    if ((b.is_string() || b.is_list()) && a_int) return repeat(b, a.as_int());
  }
  if (op == "%" && a.is_string()) return Value::string(percent_format(a.as_string(), b));
  unsupported(op, a, b);
}

Value unary_op(std::string_view op, const Value& a) {
  require_defined(a);
  if (a.is_float()) return Value::number(op == "-" ? -a.as_float() : a.as_float());
  if (a.is_int() || a.is_bool()) {
    if (op == "-" && a.as_int() == INT64_MIN) raise("integer overflow");
    return Value::integer(op == "-" ? -a.as_int() : a.as_int());
  }
  raise("bad operand type for unary " + std::string(op) + ": '" + type_name(a) + "'");
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::Undefined: return false;
    case Value::Kind::String:
      if (!item.is_string()) raise("'in <string>' requires string as left operand, not " + type_name(item));
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::List:
      for (const Value& v : container.list().items) {
        if (equals(v, item)) return true;
      }
      return false;
    case Value::Kind::Dict:
      if (!container.is_namespace()) return item.is_string() && container.dict().find(item.as_string());
      break;
    default: break;
  }
  raise("argument of type '" + type_name(container) + "' is not iterable");
}

bool compare_op(std::string_view op, const Value& a, const Value& b) {
  if (op == "==") return equals(a, b);
  if (op == "!=") return !equals(a, b);
  if (op == "in") return contains(b, a);
  if (op == "notin") return !contains(b, a);
  const int c = compare(a, b, op);
  if (op == "<") return c < 0;
  if (op == "<=") return c <= 0;
  if (op == ">") return c > 0;
  return c >= 0;
}

}  // namespace whale::jinja
