// whale's one error type: a message that names what failed and where (file, tensor, JSON key, offset).
// Library code throws it and adds context as it rises; the CLI and the HTTP handler catch it once.
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace whale {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// Runs fn(); an Error escaping it is rethrown with "context: " prepended.
template <typename Fn>
decltype(auto) with_context(const std::string& context, Fn&& fn) {
  try {
    return fn();
  } catch (const Error& e) {
    throw Error(context + ": " + e.what());
  }
}

}  // namespace whale
