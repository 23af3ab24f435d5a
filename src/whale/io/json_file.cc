#include "whale/io/json_file.h"

#include <algorithm>
#include <cstdint>

#include "whale/core/error.h"
#include "whale/io/text_file.h"

namespace whale {

nlohmann::json read_json_file(const std::filesystem::path& file) {
  const std::string text = read_text_file(file);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON ({})", file.string(), e.what());
  }
}

void for_each_json_line(std::string_view text, const std::string& source, std::string_view blank,
                        const std::function<void(const nlohmann::json& value, const std::string& where)>& fn) {
  int64_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = std::min(text.find('\n', pos), text.size());
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(blank) == std::string_view::npos) continue;
    const std::string where = fmt::format("{}:{}", source, line_no);
    nlohmann::json value;
    try {
      value = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      fail("{}: not valid JSON ({})", where, e.what());
    }
    fn(value, where);
  }
}

}  // namespace whale
