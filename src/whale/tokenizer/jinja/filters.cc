// jinja2's built-in filters (jinja2/filters.py), with transformers' tojson.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <map>

#include <fmt/format.h>

#include "whale/tokenizer/jinja/builtins.h"
#include "whale/tokenizer/jinja/operators.h"
#include "whale/tokenizer/jinja/text.h"

namespace whale::jinja {
namespace {

using Filter = Value (*)(const Value& v, CallArgs& args);

constexpr size_t kKeywordOnly = SIZE_MAX;  // CallArgs::get index that never matches a positional argument

// Item access along a dotted path whose numeric parts are indexes (jinja2 make_attrgetter).
Value attribute_path(const Value& item, const std::string& path) {
  static const std::string kDot = ".";
  Value v = item;
  for (const std::string& part : split(path, &kDot, -1)) {
    const bool index = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
    v = get_item(v, index ? Value::integer(std::stoll(part)) : Value::string(part));
  }
  return v;
}

// The key a sort/unique/min/max compares: the attribute if given, lowercased strings unless case_sensitive.
Value sort_key(const Value& item, const std::string* attribute, bool case_sensitive) {
  Value v = attribute ? attribute_path(item, *attribute) : item;
  if (!case_sensitive && v.is_string()) return Value::string(lower(v.as_string()));
  return v;
}

std::string spaces(int64_t n) { return std::string(static_cast<size_t>(std::max<int64_t>(0, n)), ' '); }

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// Removes the underscores Python allows between two digits; false if one is misplaced.
bool drop_underscores(const std::string& s, std::string& out) {
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '_') {
      out += s[i];
    } else if (i == 0 || i + 1 == s.size() || !digit(s[i - 1]) || !digit(s[i + 1])) {
      return false;
    }
  }
  return true;
}

// Python float(str): surrounding whitespace, underscores between digits, inf and nan.
bool parse_float(const std::string& text, double& out) {
  std::string s;
  if (!drop_underscores(strip(text, nullptr, true, true), s) || s.empty()) return false;
  if (s.find_first_of("xXpP(") != std::string::npos || std::isspace(static_cast<unsigned char>(s[0]))) return false;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

// Python int(str, base) for bases 2 to 36, without prefixes.
bool parse_int(const std::string& text, int base, int64_t& out) {
  std::string s;
  if (!drop_underscores(strip(text, nullptr, true, true), s) || s.empty()) return false;
  size_t i = s[0] == '+' || s[0] == '-' ? 1 : 0;
  if (i == s.size()) return false;
  int64_t value = 0;
  for (; i < s.size(); ++i) {
    const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'z' ? c - 'a' + 10 : 99;
    if (d >= base) return false;
    if (__builtin_mul_overflow(value, base, &value) || __builtin_add_overflow(value, d, &value)) return false;
  }
  out = s[0] == '-' ? -value : value;
  return true;
}

Value do_int(const Value& v, CallArgs& a) {
  const Value* fallback = a.get(0, "default");
  const int base = static_cast<int>(int_arg(a.get(1, "base"), 10, "base"));
  int64_t i = 0;
  double d = 0;
  if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
  if (v.is_float() && std::isfinite(v.as_float())) {
    return Value::integer(static_cast<int64_t>(std::trunc(v.as_float())));
  }
  if (v.is_string()) {
    if (parse_int(v.as_string(), base, i)) return Value::integer(i);
    if (parse_float(v.as_string(), d) && std::isfinite(d)) return Value::integer(static_cast<int64_t>(std::trunc(d)));
  }
  return fallback ? *fallback : Value::integer(0);
}

Value do_float(const Value& v, CallArgs& a) {
  const Value* fallback = a.get(0, "default");
  double d = 0;
  if (v.is_number()) return Value::number(v.as_float());
  if (v.is_string() && parse_float(v.as_string(), d)) return Value::number(d);
  return fallback ? *fallback : Value::number(0.0);
}

int64_t length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined: return 0;
    case Value::Kind::String: return static_cast<int64_t>(code_point_count(v.as_string()));
    case Value::Kind::List: return static_cast<int64_t>(v.list().items.size());
    case Value::Kind::Dict:
      if (!v.is_namespace()) return static_cast<int64_t>(v.dict().items.size());
      break;
    default: break;
  }
  raise("object of type '" + type_name(v) + "' has no len()");
}

Value do_round(const Value& v, CallArgs& a) {
  const int64_t precision = int_arg(a.get(0, "precision"), 0, "precision");
  const std::string* method = string_arg(a.get(1, "method"), "method");
  const std::string how = method ? *method : "common";
  if (how != "common" && how != "floor" && how != "ceil") raise("method must be common, ceil or floor");
  if (!v.is_number()) raise("type " + type_name(v) + " doesn't define __round__ method");
  const double scale = std::pow(10.0, static_cast<double>(precision));
  if (how != "common") {  // math.floor/ceil(value * 10**precision) / 10**precision
    const double x = v.as_float() * scale;
    return Value::number((how == "floor" ? std::floor(x) : std::ceil(x)) / scale);
  }
  if (!v.is_float()) {  // Python round(int, ndigits) stays an int, rounding half to even
    if (precision >= 0) return Value::integer(v.as_int());
    const double unit = std::pow(10.0, static_cast<double>(-precision));
    return Value::integer(static_cast<int64_t>(std::nearbyint(static_cast<double>(v.as_int()) / unit) * unit));
  }
  const double x = v.as_float();
  if (!std::isfinite(x) || precision > 300) return Value::number(x);
  if (precision < 0) {
    const double unit = std::pow(10.0, static_cast<double>(-precision));
    return Value::number(std::nearbyint(x / unit) * unit);
  }
  // printf rounds the exact binary value half-to-even, as Python's correctly rounded round() does.
  std::vector<char> buf(static_cast<size_t>(precision) + 400);
  std::snprintf(buf.data(), buf.size(), "%.*f", static_cast<int>(precision), x);
  return Value::number(std::strtod(buf.data(), nullptr));
}

Value do_indent(const Value& v, CallArgs& a) {
  const Value* width = a.get(0, "width");
  const std::string pad = width && width->is_string() ? width->as_string() : spaces(int_arg(width, 4, "width"));
  const bool first = bool_arg(a.get(1, "first"), false);
  const bool blank = bool_arg(a.get(2, "blank"), false);
  const std::vector<std::string> lines = splitlines(to_str(v) + "\n", false);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += "\n";
    if (i > 0 && (blank || !lines[i].empty())) out += pad;
    out += lines[i];
  }
  return Value::string(first ? pad + out : out);
}

Value do_tojson(const Value& v, CallArgs& a) {
  // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> json.dumps
  JsonOptions o;
  o.ensure_ascii = bool_arg(a.get(0, "ensure_ascii"), false);
  if (const Value* indent = a.get(1, "indent"); indent && !indent->is_none()) {
    o.indent_set = true;
    o.indent = indent->is_string() ? indent->as_string() : spaces(int_arg(indent, 0, "indent"));
    o.item_separator = ",";
  }
  if (const Value* sep = a.get(2, "separators"); sep && !sep->is_none()) {
    const std::vector<Value> parts = iterate(*sep);
    if (parts.size() != 2 || !parts[0].is_string() || !parts[1].is_string()) {
      raise("separators must be a pair of strings");
    }
    o.item_separator = parts[0].as_string();
    o.key_separator = parts[1].as_string();
  }
  o.sort_keys = bool_arg(a.get(3, "sort_keys"), false);
  return Value::string(to_json(v, o));
}

std::vector<Value> sorted(const Value& v, CallArgs& a, size_t first_arg) {
  const bool reverse = bool_arg(a.get(first_arg, "reverse"), false);
  const bool case_sensitive = bool_arg(a.get(first_arg + 1, "case_sensitive"), false);
  const std::string* attribute = string_arg(a.get(first_arg + 2, "attribute"), "attribute");
  std::vector<Value> items = iterate(v);
  std::vector<std::pair<Value, size_t>> keyed;
  for (size_t i = 0; i < items.size(); ++i) keyed.emplace_back(sort_key(items[i], attribute, case_sensitive), i);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? compare(y.first, x.first) < 0 : compare(x.first, y.first) < 0;
  });
  std::vector<Value> out;
  for (const auto& k : keyed) out.push_back(items[k.second]);
  return out;
}

Value min_max(const Value& v, CallArgs& a, bool want_max) {
  const bool case_sensitive = bool_arg(a.get(0, "case_sensitive"), false);
  const std::string* attribute = string_arg(a.get(1, "attribute"), "attribute");
  const std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  for (size_t i = 1; i < items.size(); ++i) {
    const int c =
        compare(sort_key(items[i], attribute, case_sensitive), sort_key(items[best], attribute, case_sensitive));
    if (want_max ? c > 0 : c < 0) best = i;
  }
  return items[best];
}

// select / reject / selectattr / rejectattr: args are [attribute,] [test name, test args...].
Value select_or_reject(const Value& v, CallArgs& a, bool select, bool by_attribute) {
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    const std::string* attr = string_arg(a.get(0, "attribute"), "attribute");
    if (!attr) raise("missing attribute for " + std::string(select ? "selectattr" : "rejectattr"));
    attribute = *attr;
    next = 1;
  }
  const std::string* test = next < a.positional.size() ? string_arg(&a.positional[next], "test name") : nullptr;
  CallArgs test_args;
  for (size_t i = next + 1; i < a.positional.size(); ++i) test_args.positional.push_back(a.positional[i]);
  test_args.keyword = a.keyword;
  std::vector<Value> out;
  for (const Value& item : iterate(v)) {
    const Value x = by_attribute ? attribute_path(item, attribute) : item;
    const bool pass = test ? apply_test(*test, x, test_args) : x.truthy();
    if (pass == select) out.push_back(item);
  }
  return Value::make_list(std::move(out));
}

Value do_map(const Value& v, CallArgs& a) {
  std::vector<Value> out;
  if (const std::string* attribute = string_arg(a.get(kKeywordOnly, "attribute"), "attribute")) {
    const Value* fallback = a.get(kKeywordOnly, "default");
    for (const Value& item : iterate(v)) {
      Value x = attribute_path(item, *attribute);
      out.push_back(x.is_undefined() && fallback ? *fallback : x);
    }
    return Value::make_list(std::move(out));
  }
  const std::string* filter = a.positional.empty() ? nullptr : string_arg(&a.positional[0], "filter name");
  if (!filter) raise("map requires a filter name or attribute=");
  CallArgs filter_args;
  filter_args.positional.assign(a.positional.begin() + 1, a.positional.end());
  filter_args.keyword = a.keyword;
  for (const Value& item : iterate(v)) out.push_back(apply_filter(*filter, item, filter_args));
  return Value::make_list(std::move(out));
}

Value do_unique(const Value& v, CallArgs& a) {
  const bool case_sensitive = bool_arg(a.get(0, "case_sensitive"), false);
  const std::string* attribute = string_arg(a.get(1, "attribute"), "attribute");
  std::vector<Value> out, seen;
  for (const Value& item : iterate(v)) {
    const Value key = sort_key(item, attribute, case_sensitive);
    if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) {
      seen.push_back(key);
      out.push_back(item);
    }
  }
  return Value::make_list(std::move(out));
}

Value do_dictsort(const Value& v, CallArgs& a) {
  if (!v.is_dict()) raise("dictsort: expected a mapping, got " + type_name(v));
  const bool case_sensitive = bool_arg(a.get(0, "case_sensitive"), false);
  const std::string* by = string_arg(a.get(1, "by"), "by");
  const bool by_value = by && *by == "value";
  if (by && !by_value && *by != "key") raise("You can only sort by either \"key\" or \"value\"");
  const bool reverse = bool_arg(a.get(2, "reverse"), false);
  std::vector<Value> pairs;
  for (const auto& [k, val] : v.dict().items) pairs.push_back(Value::make_tuple({Value::string(k), val}));
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
    const Value kx = sort_key(x.list().items[by_value], nullptr, case_sensitive);
    const Value ky = sort_key(y.list().items[by_value], nullptr, case_sensitive);
    return reverse ? compare(ky, kx) < 0 : compare(kx, ky) < 0;
  });
  return Value::make_list(std::move(pairs));
}

Value first_or_last(const Value& v, bool last) {
  const std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined(fmt::format("No {} item, sequence was empty.", last ? "last" : "first"));
  return last ? items.back() : items.front();
}

Value string_value(const Value& v) { return Value::string(to_str(v)); }

const std::map<std::string, Filter, std::less<>>& filters() {
  static const std::map<std::string, Filter, std::less<>> table = {
      {"abs", [](const Value& v, CallArgs&) {
         if (!v.is_number()) raise("bad operand type for abs(): '" + type_name(v) + "'");
         return v.is_float() ? Value::number(std::fabs(v.as_float())) : unary_op(v.as_int() < 0 ? "-" : "+", v);
       }},
      {"attr", [](const Value& v, CallArgs& a) {
         const std::string* name = string_arg(a.get(0, "name"), "name");
         if (!name) raise("attr requires a name");
         return get_attribute(v, *name);
       }},
      {"capitalize", [](const Value& v, CallArgs&) { return Value::string(capitalize(to_str(v))); }},
      {"count", [](const Value& v, CallArgs&) { return Value::integer(length(v)); }},
      {"default", [](const Value& v, CallArgs& a) {
         const Value* fallback = a.get(0, "default_value");
         if (v.is_undefined() || (bool_arg(a.get(1, "boolean"), false) && !v.truthy())) {
           return fallback ? *fallback : Value::string("");
         }
         return v;
       }},
      {"dictsort", do_dictsort},
      {"escape", [](const Value& v, CallArgs&) { return Value::string(html_escape(to_str(v))); }},
      {"first", [](const Value& v, CallArgs&) { return first_or_last(v, false); }},
      {"float", do_float},
      {"format", [](const Value& v, CallArgs& a) {
         return Value::string(percent_format(to_str(v), Value::make_tuple(a.positional)));
       }},
      {"indent", do_indent},
      {"int", do_int},
      {"items", [](const Value& v, CallArgs& a) {
         if (v.is_undefined()) return Value::make_list();
         if (!v.is_dict()) raise("Can only get item pairs from a mapping.");
         return get_attribute(v, "items").function().call(a);
       }},
      {"join", [](const Value& v, CallArgs& a) {
         const std::string* sep = string_arg(a.get(0, "d"), "d");
         const std::string* attribute = string_arg(a.get(1, "attribute"), "attribute");
         std::string out;
         bool first = true;
         for (const Value& item : iterate(v)) {
           if (!first && sep) out += *sep;
           out += to_str(attribute ? attribute_path(item, *attribute) : item);
           first = false;
         }
         return Value::string(std::move(out));
       }},
      {"last", [](const Value& v, CallArgs&) { return first_or_last(v, true); }},
      {"length", [](const Value& v, CallArgs&) { return Value::integer(length(v)); }},
      {"list", [](const Value& v, CallArgs&) { return Value::make_list(iterate(v)); }},
      {"lower", [](const Value& v, CallArgs&) { return Value::string(lower(to_str(v))); }},
      {"map", do_map},
      {"max", [](const Value& v, CallArgs& a) { return min_max(v, a, true); }},
      {"min", [](const Value& v, CallArgs& a) { return min_max(v, a, false); }},
      {"reject", [](const Value& v, CallArgs& a) { return select_or_reject(v, a, false, false); }},
      {"rejectattr", [](const Value& v, CallArgs& a) { return select_or_reject(v, a, false, true); }},
      {"replace", [](const Value& v, CallArgs& a) {
         const std::string* old = string_arg(a.get(0, "old"), "old");
         const std::string* with = string_arg(a.get(1, "new"), "new");
         if (!old || !with) raise("replace requires old and new strings");
         return Value::string(replace(to_str(v), *old, *with, int_arg(a.get(2, "count"), -1, "count")));
       }},
      {"reverse", [](const Value& v, CallArgs&) {
         if (v.is_string()) {
           std::u32string u = to_u32(v.as_string());
           std::reverse(u.begin(), u.end());
           return Value::string(from_u32(u));
         }
         std::vector<Value> items = iterate(v);
         std::reverse(items.begin(), items.end());
         return Value::make_list(std::move(items));
       }},
      {"round", do_round},
      {"safe", [](const Value& v, CallArgs&) { return string_value(v); }},
      {"select", [](const Value& v, CallArgs& a) { return select_or_reject(v, a, true, false); }},
      {"selectattr", [](const Value& v, CallArgs& a) { return select_or_reject(v, a, true, true); }},
      {"sort", [](const Value& v, CallArgs& a) { return Value::make_list(sorted(v, a, 0)); }},
      {"string", [](const Value& v, CallArgs&) { return string_value(v); }},
      {"sum", [](const Value& v, CallArgs& a) {
         const std::string* attribute = string_arg(a.get(0, "attribute"), "attribute");
         const Value* start = a.get(1, "start");
         Value total = start ? *start : Value::integer(0);
         for (const Value& item : iterate(v)) {
           total = binary_op("+", total, attribute ? attribute_path(item, *attribute) : item);
         }
         return total;
       }},
      {"title", [](const Value& v, CallArgs&) { return Value::string(jinja_title(to_str(v))); }},
      {"tojson", do_tojson},
      {"trim", [](const Value& v, CallArgs& a) {
         return Value::string(strip(to_str(v), string_arg(a.get(0, "chars"), "chars"), true, true));
       }},
      {"unique", do_unique},
      {"upper", [](const Value& v, CallArgs&) { return Value::string(upper(to_str(v))); }},
      {"wordcount", [](const Value& v, CallArgs&) {
         return Value::integer(static_cast<int64_t>(split(to_str(v), nullptr, -1).size()));
       }},
  };
  return table;
}

}  // namespace

Value apply_filter(const std::string& name, const Value& operand, CallArgs& args) {
  static const std::map<std::string, std::string, std::less<>> aliases = {
      {"d", "default"}, {"e", "escape"}, {"forceescape", "escape"}};
  const auto alias = aliases.find(name);
  const auto it = filters().find(alias == aliases.end() ? name : alias->second);
  if (it == filters().end()) raise("no filter named '" + name + "'");
  return it->second(operand, args);
}

}  // namespace whale::jinja
