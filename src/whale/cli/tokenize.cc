// whale tokenize: text on stdin to a JSON array of ids, or (--decode) a JSON array of ids to text.
#include <cstdio>
#include <iterator>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "whale/cli/command.h"
#include "whale/core/error.h"
#include "whale/tokenizer/tokenizer.h"

namespace whale::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  bool decode = false;
  bool bos = false;
  bool skip_special = false;
};

void run_tokenize(const TokenizeOptions& opt) {
  const Tokenizer tok = Tokenizer::load(opt.model);
  const std::string input = read_stdin();
  if (!opt.decode) {
    const std::vector<int32_t> ids = tok.encode(input, opt.bos);
    std::string out = "[";
    for (size_t i = 0; i < ids.size(); ++i) fmt::format_to(std::back_inserter(out), "{}{}", i ? "," : "", ids[i]);
    write_stdout(out + "]\n");
    return;
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(input);
  } catch (const nlohmann::json::exception& e) {
    fail("stdin: expected a JSON array of token ids: {}", e.what());
  }
  if (!j.is_array()) fail("stdin: expected a JSON array of token ids");
  std::vector<int32_t> ids;
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_number_integer() || j[i].get<int64_t>() < 0 || j[i].get<int64_t>() > INT32_MAX)
      fail("stdin: element {} ({}) is not a token id", i, j[i].dump());
    ids.push_back(j[i].get<int32_t>());
  }
  write_stdout(tok.decode(ids, opt.skip_special));
}

}  // namespace

Command register_tokenize(CLI::App& root) {
  auto opt = std::make_shared<TokenizeOptions>();
  CLI::App* app = root.add_subcommand(
      "tokenize", "Encode UTF-8 text from stdin to a JSON array of token ids, or decode one (--decode)");
  app->add_option("--model", opt->model, "Directory with tokenizer.json (and tokenizer_config.json)")->required();
  app->add_flag("--decode", opt->decode, "Read a JSON array of ids on stdin and print their text");
  app->add_flag("--bos", opt->bos, "Add the special tokens of tokenizer_config.json (BOS) when encoding");
  app->add_flag("--skip-special", opt->skip_special, "Leave special tokens out when decoding");
  return {app, [opt] { run_tokenize(*opt); }};
}

}  // namespace whale::cli
