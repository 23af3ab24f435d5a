#include "whale/io/text_file.h"

#include <fstream>
#include <sstream>

#include "whale/core/error.h"

namespace whale {

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail("{}: cannot read", path.string());
  return ss.str();
}

void write_text_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) fail("{}: cannot create", path.string());
  f << text;
  f.flush();
  if (!f) fail("{}: write failed", path.string());
}

}  // namespace whale
