// JSON read from files: a whole document (configs, run states) or one object per line (.jsonl data and tasks).
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace whale {

// The JSON document in `file`; throws Error naming it if it cannot be read or parsed.
nlohmann::json read_json_file(const std::filesystem::path& file);

// Calls fn(value, where) for every line of `text` that holds any character outside `blank`, parsed as JSON, with
// where = "source:line" (1-based) for the caller's errors. Throws Error "source:line: not valid JSON (...)" for a
// line that does not parse.
void for_each_json_line(std::string_view text, const std::string& source, std::string_view blank,
                        const std::function<void(const nlohmann::json& value, const std::string& where)>& fn);

}  // namespace whale
