// Attribute, item and slice access, iteration, %-formatting, and the Python methods of str, dict and list.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include <fmt/format.h>

#include "whale/tokenizer/jinja/builtins.h"
#include "whale/tokenizer/jinja/text.h"

namespace whale::jinja {
namespace {

// jinja2 object_type_repr: "None" for None, otherwise "<type> object".
std::string object_type(const Value& v) { return v.is_none() ? "None" : type_name(v) + " object"; }

Value missing_attribute(const Value& obj, const std::string& name) {
  return Value::undefined(fmt::format("'{}' has no attribute '{}'", object_type(obj), name));
}

Value list_of_strings(const std::vector<std::string>& parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (const auto& p : parts) items.push_back(Value::string(p));
  return Value::make_list(std::move(items));
}

const std::string& self_string(const Value& v) { return v.as_string(); }

// Code point index range [start, end) from optional Python-style start/end arguments.
void index_range(const CallArgs& args, size_t first, int64_t length, int64_t& start, int64_t& end) {
  start = 0;
  end = length;
  auto adjust = [&](const Value* v, int64_t& out) {
    if (!v || v->is_none()) return;
    int64_t i = int_arg(v, 0, "index");
    if (i < 0) i = std::max<int64_t>(0, i + length);
    out = std::min(i, length);
  };
  adjust(args.get(first, "start"), start);
  adjust(args.get(first + 1, "end"), end);
}

int64_t find_code_point(const std::string& s, const std::string& sub, const CallArgs& args, bool reverse) {
  const std::u32string u = to_u32(s), needle = to_u32(sub);
  int64_t start = 0, end = 0;
  index_range(args, 1, static_cast<int64_t>(u.size()), start, end);
  if (end - start < static_cast<int64_t>(needle.size())) return -1;
  const std::u32string_view window = std::u32string_view(u).substr(start, end - start);
  const size_t at = reverse ? window.rfind(needle) : window.find(needle);
  return at == std::u32string_view::npos ? -1 : start + static_cast<int64_t>(at);
}

bool affix_matches(const std::string& s, const Value& affix, bool prefix) {
  auto one = [&](const Value& a) {
    if (!a.is_string()) {
      raise(fmt::format("{} first arg must be str or a tuple of str", prefix ? "startswith" : "endswith"));
    }
    const std::string& x = a.as_string();
    return x.size() <= s.size() && s.compare(prefix ? 0 : s.size() - x.size(), x.size(), x) == 0;
  };
  if (affix.is_list()) {
    for (const Value& a : affix.list().items) {
      if (one(a)) return true;
    }
    return false;
  }
  return one(affix);
}

// str.format with automatic or explicit field numbering, keyword fields and !r / !s conversions.
std::string str_format(const std::string& format, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if ((c == '{' || c == '}') && i + 1 < format.size() && format[i + 1] == c) {
      out += c;
      ++i;
      continue;
    }
    if (c == '}') raise("Single '}' encountered in format string");
    if (c != '{') {
      out += c;
      continue;
    }
    const size_t close = format.find('}', i);
    if (close == std::string::npos) raise("Single '{' encountered in format string");
    std::string field = format.substr(i + 1, close - i - 1);
    i = close;
    char conversion = 's';
    if (const size_t bang = field.find('!'); bang != std::string::npos) {
      conversion = bang + 1 < field.size() ? field[bang + 1] : 's';
      field.resize(bang);
    }
    if (field.find(':') != std::string::npos) raise("format specs are not supported in str.format");
    const Value* v = nullptr;
    if (field.empty()) {
      v = auto_index < args.positional.size() ? &args.positional[auto_index++] : nullptr;
    } else if (field[0] >= '0' && field[0] <= '9') {
      const size_t index = std::stoul(field);
      v = index < args.positional.size() ? &args.positional[index] : nullptr;
    } else {
      for (const auto& [k, val] : args.keyword) {
        if (k == field) v = &val;
      }
    }
    if (!v) raise("missing argument for format field '{" + field + "}'");
    out += conversion == 'r' ? to_repr(*v) : to_str(*v);
  }
  return out;
}

using Method = Value (*)(const Value& self, CallArgs& args);

const std::map<std::string, Method, std::less<>>& string_methods() {
  static const std::map<std::string, Method, std::less<>> methods = {
      {"upper", [](const Value& s, CallArgs&) { return Value::string(upper(self_string(s))); }},
      {"lower", [](const Value& s, CallArgs&) { return Value::string(lower(self_string(s))); }},
      {"capitalize", [](const Value& s, CallArgs&) { return Value::string(capitalize(self_string(s))); }},
      {"title", [](const Value& s, CallArgs&) { return Value::string(python_title(self_string(s))); }},
      {"strip", [](const Value& s, CallArgs& a) {
         return Value::string(strip(self_string(s), string_arg(a.get(0, "chars"), "chars"), true, true));
       }},
      {"lstrip", [](const Value& s, CallArgs& a) {
         return Value::string(strip(self_string(s), string_arg(a.get(0, "chars"), "chars"), true, false));
       }},
      {"rstrip", [](const Value& s, CallArgs& a) {
         return Value::string(strip(self_string(s), string_arg(a.get(0, "chars"), "chars"), false, true));
       }},
      {"split", [](const Value& s, CallArgs& a) {
         return list_of_strings(split(self_string(s), string_arg(a.get(0, "sep"), "sep"),
                                      int_arg(a.get(1, "maxsplit"), -1, "maxsplit")));
       }},
      {"rsplit", [](const Value& s, CallArgs& a) {
         return list_of_strings(rsplit(self_string(s), string_arg(a.get(0, "sep"), "sep"),
                                       int_arg(a.get(1, "maxsplit"), -1, "maxsplit")));
       }},
      {"splitlines", [](const Value& s, CallArgs& a) {
         return list_of_strings(splitlines(self_string(s), bool_arg(a.get(0, "keepends"), false)));
       }},
      {"startswith", [](const Value& s, CallArgs& a) {
         if (a.positional.empty()) raise("startswith() takes at least 1 argument (0 given)");
         return Value::boolean(affix_matches(self_string(s), a.positional[0], true));
       }},
      {"endswith", [](const Value& s, CallArgs& a) {
         if (a.positional.empty()) raise("endswith() takes at least 1 argument (0 given)");
         return Value::boolean(affix_matches(self_string(s), a.positional[0], false));
       }},
      {"replace", [](const Value& s, CallArgs& a) {
         const std::string* old = string_arg(a.get(0, "old"), "old");
         const std::string* with = string_arg(a.get(1, "new"), "new");
         if (!old || !with) raise("replace() takes at least 2 arguments");
         return Value::string(replace(self_string(s), *old, *with, int_arg(a.get(2, "count"), -1, "count")));
       }},
      {"find", [](const Value& s, CallArgs& a) {
         const std::string* sub = string_arg(a.get(0, "sub"), "sub");
         if (!sub) raise("find() takes at least 1 argument (0 given)");
         return Value::integer(find_code_point(self_string(s), *sub, a, false));
       }},
      {"rfind", [](const Value& s, CallArgs& a) {
         const std::string* sub = string_arg(a.get(0, "sub"), "sub");
         if (!sub) raise("rfind() takes at least 1 argument (0 given)");
         return Value::integer(find_code_point(self_string(s), *sub, a, true));
       }},
      {"count", [](const Value& s, CallArgs& a) {
         const std::string* sub = string_arg(a.get(0, "sub"), "sub");
         if (!sub) raise("count() takes at least 1 argument (0 given)");
         if (sub->empty()) return Value::integer(static_cast<int64_t>(code_point_count(self_string(s))) + 1);
         const std::string& x = self_string(s);
         int64_t n = 0;
         for (size_t at = x.find(*sub); at != std::string::npos; at = x.find(*sub, at + sub->size())) ++n;
         return Value::integer(n);
       }},
      {"join", [](const Value& s, CallArgs& a) {
         if (a.positional.empty()) raise("join() takes exactly one argument (0 given)");
         std::string out;
         bool first = true;
         for (const Value& v : iterate(a.positional[0])) {
           if (!v.is_string()) raise("sequence item: expected str instance, " + type_name(v) + " found");
           if (!first) out += self_string(s);
           out += v.as_string();
           first = false;
         }
         return Value::string(std::move(out));
       }},
      {"format", [](const Value& s, CallArgs& a) { return Value::string(str_format(self_string(s), a)); }},
      {"isspace", [](const Value& s, CallArgs&) {
         const std::u32string u = to_u32(self_string(s));
         return Value::boolean(!u.empty() && std::all_of(u.begin(), u.end(), is_space));
       }},
      {"isdigit", [](const Value& s, CallArgs&) {
         const std::string& x = self_string(s);
         return Value::boolean(!x.empty() && x.find_first_not_of("0123456789") == std::string::npos);
       }},
      {"isalpha", [](const Value& s, CallArgs&) {
         const std::u32string u = to_u32(self_string(s));
         return Value::boolean(!u.empty() && std::all_of(u.begin(), u.end(), is_cased));
       }},
      {"islower", [](const Value& s, CallArgs&) {
         const std::string& x = self_string(s);
         return Value::boolean(lower(x) == x && upper(x) != x);
       }},
      {"isupper", [](const Value& s, CallArgs&) {
         const std::string& x = self_string(s);
         return Value::boolean(upper(x) == x && lower(x) != x);
       }},
  };
  return methods;
}

const std::map<std::string, Method, std::less<>>& dict_methods() {
  static const std::map<std::string, Method, std::less<>> methods = {
      {"items", [](const Value& d, CallArgs&) {
         std::vector<Value> items;
         for (const auto& [k, v] : d.dict().items) items.push_back(Value::make_tuple({Value::string(k), v}));
         return Value::make_list(std::move(items));
       }},
      {"keys", [](const Value& d, CallArgs&) {
         std::vector<Value> items;
         for (const auto& kv : d.dict().items) items.push_back(Value::string(kv.first));
         return Value::make_list(std::move(items));
       }},
      {"values", [](const Value& d, CallArgs&) {
         std::vector<Value> items;
         for (const auto& kv : d.dict().items) items.push_back(kv.second);
         return Value::make_list(std::move(items));
       }},
      {"get", [](const Value& d, CallArgs& a) {
         if (a.positional.empty()) raise("get expected at least 1 argument, got 0");
         const Value* v = a.positional[0].is_string() ? d.dict().find(a.positional[0].as_string()) : nullptr;
         if (v) return *v;
         return a.positional.size() > 1 ? a.positional[1] : Value::none();
       }},
  };
  return methods;
}

const std::map<std::string, Method, std::less<>>& list_methods() {
  static const std::map<std::string, Method, std::less<>> methods = {
      {"index", [](const Value& l, CallArgs& a) {
         if (a.positional.empty()) raise("index expected at least 1 argument, got 0");
         const auto& items = l.list().items;
         for (size_t i = 0; i < items.size(); ++i) {
           if (equals(items[i], a.positional[0])) return Value::integer(static_cast<int64_t>(i));
         }
         raise(to_repr(a.positional[0]) + " is not in list");
       }},
      {"count", [](const Value& l, CallArgs& a) {
         if (a.positional.empty()) raise("count() takes exactly one argument (0 given)");
         int64_t n = 0;
         for (const Value& v : l.list().items) n += equals(v, a.positional[0]);
         return Value::integer(n);
       }},
  };
  return methods;
}

Value bind(const Value& self, const std::string& name, Method method) {
  return Value::make_function(name, [self, method](CallArgs& args) { return method(self, args); });
}

Value find_method(const Value& obj, const std::string& name) {
  const std::map<std::string, Method, std::less<>>* table = nullptr;
  if (obj.is_string()) table = &string_methods();
  if (obj.is_dict()) table = &dict_methods();
  if (obj.is_list()) table = &list_methods();
  if (table) {
    if (auto it = table->find(name); it != table->end()) return bind(obj, name, it->second);
  }
  return Value::undefined();
}

}  // namespace

int64_t int_arg(const Value* v, int64_t fallback, const char* what) {
  if (!v || v->is_none()) return fallback;
  if (!v->is_int() && !v->is_bool()) raise(std::string(what) + " must be an integer, not " + type_name(*v));
  return v->as_int();
}

bool bool_arg(const Value* v, bool fallback) { return v ? v->truthy() : fallback; }

const std::string* string_arg(const Value* v, const char* what) {
  if (!v || v->is_none()) return nullptr;
  if (!v->is_string()) raise(std::string(what) + " must be str or None, not " + type_name(*v));
  return &v->as_string();
}

Value get_attribute(const Value& obj, const std::string& name) {
  require_defined(obj);
  if (Value m = find_method(obj, name); !m.is_undefined()) return m;
  if (obj.kind() == Value::Kind::Dict) {
    if (const Value* v = obj.dict().find(name)) return *v;
  }
  return missing_attribute(obj, name);
}

Value get_item(const Value& obj, const Value& key) {
  require_defined(obj);
  if (obj.kind() == Value::Kind::Dict && key.is_string()) {
    if (const Value* v = obj.dict().find(key.as_string())) return *v;
  } else if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    const std::u32string chars = obj.is_string() ? to_u32(obj.as_string()) : std::u32string();
    const int64_t length = obj.is_string() ? static_cast<int64_t>(chars.size())
                                           : static_cast<int64_t>(obj.list().items.size());
    int64_t i = key.as_int();
    if (i < 0) i += length;
    if (i >= 0 && i < length) {
      if (obj.is_list()) return obj.list().items[static_cast<size_t>(i)];
      return Value::string(from_u32(std::u32string(1, chars[static_cast<size_t>(i)])));
    }
    return Value::undefined(object_type(obj) + " has no element " + std::to_string(key.as_int()));
  }
  if (key.is_string()) {
    if (Value m = find_method(obj, key.as_string()); !m.is_undefined()) return m;
    return missing_attribute(obj, key.as_string());
  }
  return Value::undefined(object_type(obj) + " has no element " + to_repr(key));
}

Value slice_value(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  require_defined(obj);
  if (!obj.is_list() && !obj.is_string()) raise("'" + type_name(obj) + "' object is not subscriptable");
  const auto bound = [](const Value& v) { return v.is_none() || v.is_undefined(); };
  const int64_t step = bound(step_v) ? 1 : int_arg(&step_v, 1, "slice step");
  if (step == 0) raise("slice step cannot be zero");
  const std::u32string chars = obj.is_string() ? to_u32(obj.as_string()) : std::u32string();
  const int64_t length = obj.is_string() ? static_cast<int64_t>(chars.size())
                                         : static_cast<int64_t>(obj.list().items.size());
  // PySlice_AdjustIndices
  const int64_t lower = step > 0 ? 0 : -1, upper = step > 0 ? length : length - 1;
  const auto adjust = [&](const Value& v, int64_t fallback) {
    if (bound(v)) return fallback;
    int64_t i = int_arg(&v, 0, "slice index");
    if (i < 0) {
      i += length;
      return i < lower ? lower : i;
    }
    return i > upper ? upper : i;
  };
  const int64_t start = adjust(start_v, step > 0 ? lower : upper);
  const int64_t stop = adjust(stop_v, step > 0 ? upper : lower);
  std::u32string s;
  std::vector<Value> items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (obj.is_string()) {
      s += chars[static_cast<size_t>(i)];
    } else {
      items.push_back(obj.list().items[static_cast<size_t>(i)]);
    }
  }
  if (obj.is_string()) return Value::string(from_u32(s));
  return obj.is_tuple() ? Value::make_tuple(std::move(items)) : Value::make_list(std::move(items));
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return {};
    case Value::Kind::List: return v.list().items;
    case Value::Kind::String: {
      std::vector<Value> out;
      const std::string& s = v.as_string();
      for (size_t i = 0; i < s.size();) {
        const size_t start = i;
        next_code_point(s, i);
        out.push_back(Value::string(s.substr(start, i - start)));
      }
      return out;
    }
    case Value::Kind::Dict:
      if (!v.is_namespace()) {
        std::vector<Value> out;
        for (const auto& kv : v.dict().items) out.push_back(Value::string(kv.first));
        return out;
      }
      break;
    default: break;
  }
  raise("'" + type_name(v) + "' object is not iterable");
}

std::string percent_format(const std::string& format, const Value& args) {
  const std::vector<Value> values = args.is_tuple() ? args.list().items : std::vector<Value>{args};
  size_t next = 0;
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    size_t j = i + 1;
    std::string spec = "%";
    while (j < format.size() && std::string_view("-+ #0").find(format[j]) != std::string_view::npos) {
      spec += format[j++];
    }
    while (j < format.size() && ((format[j] >= '0' && format[j] <= '9') || format[j] == '.')) spec += format[j++];
    if (j >= format.size()) raise("incomplete format");
    const char conv = format[j];
    i = j;
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (next >= values.size()) raise("not enough arguments for format string");
    const Value& v = values[next++];
    char buf[512];
    if (conv == 's' || conv == 'r') {
      const std::string text = conv == 's' ? to_str(v) : to_repr(v);
      std::snprintf(buf, sizeof(buf), (spec + "s").c_str(), text.c_str());
      out += spec.size() == 1 ? text : std::string(buf);
    } else if (conv == 'c') {
      if (v.is_string() && code_point_count(v.as_string()) == 1) {
        out += v.as_string();
      } else {
        if (!v.is_int()) raise("%c requires int or char");
        append_code_point(out, static_cast<char32_t>(v.as_int()));
      }
    } else if (std::string_view("dixXo").find(conv) != std::string_view::npos) {
      if (!v.is_number()) raise("%" + std::string(1, conv) + " format: a real number is required, not " + type_name(v));
      const long long n = v.is_float() ? static_cast<long long>(std::trunc(v.as_float())) : v.as_int();
      std::snprintf(buf, sizeof(buf), (spec + "ll" + (conv == 'i' ? 'd' : conv)).c_str(), n);
      out += buf;
    } else if (std::string_view("eEfFgG").find(conv) != std::string_view::npos) {
      if (!v.is_number()) raise("must be real number, not " + type_name(v));
      std::snprintf(buf, sizeof(buf), (spec + conv).c_str(), v.as_float());
      out += buf;
    } else {
      raise(std::string("unsupported format character '") + conv + "'");
    }
  }
  if (next < values.size() && args.is_tuple()) raise("not all arguments converted during string formatting");
  return out;
}

}  // namespace whale::jinja
