// jinja2's built-in filters, tests and globals, the Python methods of str, dict and list that chat templates call,
// and attribute / item / slice access, all with jinja2's semantics in the ImmutableSandboxedEnvironment that
// Hugging Face uses (transformers chat_template_utils.py: tojson is json.dumps with ensure_ascii=False; globals
// raise_exception and strftime_now).
#pragma once

#include <string>
#include <unordered_map>

#include "whale/tokenizer/jinja/value.h"

namespace whale::jinja {

// filters.cc
Value apply_filter(const std::string& name, const Value& operand, CallArgs& args);

// globals.cc
bool apply_test(const std::string& name, const Value& operand, CallArgs& args);
std::unordered_map<std::string, Value> make_globals();

// methods.cc
// obj.name: methods of str/dict/list first, then dict keys; a miss is undefined (an error on undefined obj).
Value get_attribute(const Value& obj, const std::string& name);
// obj[key]: dict keys and sequence indexes first, then methods.
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step] with Python's index rules; none or undefined bounds are omitted.
Value slice_value(const Value& obj, const Value& start, const Value& stop, const Value& step);
// The items a for loop or a filter visits: list items, str code points, dict keys; undefined is empty.
std::vector<Value> iterate(const Value& v);
// Python's "%s %d" % args formatting (conversions s r d i f e g x o c %).
std::string percent_format(const std::string& format, const Value& args);

// Argument helpers for built-ins.
int64_t int_arg(const Value* v, int64_t fallback, const char* what);
bool bool_arg(const Value* v, bool fallback);
const std::string* string_arg(const Value* v, const char* what);  // nullptr for absent or none

}  // namespace whale::jinja
