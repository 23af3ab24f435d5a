// Where commands find the embedded default model (models/whale-tiny-r1) when they are given no --model.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "whale/cli/command.h"
#include "whale/core/error.h"

#ifndef WHALE_SOURCE_DIR
#define WHALE_SOURCE_DIR ""
#endif

namespace whale::cli {

namespace fs = std::filesystem;

namespace {

std::vector<fs::path> default_model_candidates() {
  std::vector<fs::path> out;
  if (const char* env = std::getenv("WHALE_DEFAULT_MODEL"); env != nullptr && *env != '\0') return {fs::path(env)};
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path bin = exe.parent_path();
    out.push_back(bin / ".." / ".." / "models" / kDefaultModelName);  // <repo>/build/<preset>/whale
    out.push_back(bin / ".." / "share" / "whale" / "models" / kDefaultModelName);  // <prefix>/bin/whale
  }
  if (std::string(WHALE_SOURCE_DIR).size() > 0) out.push_back(fs::path(WHALE_SOURCE_DIR) / "models" / kDefaultModelName);
  return out;
}

}  // namespace

std::string default_model_dir() {
  std::error_code ec;
  std::string tried;
  std::vector<fs::path> seen;
  for (const fs::path& candidate : default_model_candidates()) {
    const fs::path p = candidate.lexically_normal();
    if (std::find(seen.begin(), seen.end(), p) != seen.end()) continue;
    seen.push_back(p);
    if (fs::is_regular_file(p / "config.json", ec)) return p.string();
    tried += (tried.empty() ? "" : ", ") + p.string();
  }
  fail("no --model given, and the default model {} is not in {}; pass --model DIR (or set WHALE_DEFAULT_MODEL)",
       kDefaultModelName, tried);
}

void add_model_option_with_default(CLI::App* app, std::string& model) {
  app->add_option("--model", model,
                  "Model directory (config.json, safetensors, tokenizer files); default: the embedded whale-tiny-r1 "
                  "(models/whale-tiny-r1, a 3.6M-parameter model that multiplies numbers of 1-2 digits and adds numbers "
                  "of 1-3)");
}

void resolve_model(std::string& model) {
  if (model.empty()) model = default_model_dir();
}

}  // namespace whale::cli
