// Python str semantics on UTF-8 strings: code point access, str.isspace, case mapping, and the str methods
// that chat templates call (split, strip, replace, find, title, ...).
// Case mapping covers ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic; other scripts are left unchanged
// (Python maps every cased script).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace whale::jinja {

// Decodes the code point at s[i] and advances i; an invalid byte decodes as U+FFFD and advances by one.
char32_t next_code_point(std::string_view s, size_t& i);
void append_code_point(std::string& out, char32_t cp);
std::u32string to_u32(std::string_view s);
std::string from_u32(std::u32string_view s);
size_t code_point_count(std::string_view s);

bool is_space(char32_t c);  // Python str.isspace
bool is_printable(char32_t c);  // Python str.isprintable, for the common non-printable ranges
char32_t to_upper(char32_t c);
char32_t to_lower(char32_t c);
bool is_cased(char32_t c);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string capitalize(std::string_view s);  // first code point upper, the rest lower
std::string python_title(std::string_view s);  // str.title()
std::string jinja_title(std::string_view s);   // the |title filter: words split at whitespace, - ( { [ <

// str.strip/lstrip/rstrip: `chars` null means whitespace.
std::string strip(std::string_view s, const std::string* chars, bool left, bool right);
// str.split / str.rsplit: `sep` null means runs of whitespace; maxsplit < 0 means no limit.
std::vector<std::string> split(std::string_view s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
// str.replace; count < 0 means all.
std::string replace(std::string_view s, std::string_view old, std::string_view with, int64_t count);

}  // namespace whale::jinja
