// Python semantics of Jinja's operators: arithmetic on ints (64-bit, overflow is an error) and floats,
// str/list concatenation and repetition, comparisons and membership. Using an undefined value raises jinja2's
// UndefinedError, except for `~`, `==`, `!=` and `in` (undefined is an empty iterable).
#pragma once

#include <string_view>

#include "whale/tokenizer/jinja/value.h"

namespace whale::jinja {

// op is one of + - * / // % ** ~
Value binary_op(std::string_view op, const Value& a, const Value& b);
// op is - or +
Value unary_op(std::string_view op, const Value& a);
// op is one of == != < <= > >= in notin
bool compare_op(std::string_view op, const Value& a, const Value& b);
// Python `item in container`.
bool contains(const Value& container, const Value& item);

}  // namespace whale::jinja
