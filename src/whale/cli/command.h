// A subcommand: its CLI11 node and the action run when it is chosen. Each cli/*.cc registers one.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

namespace whale::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<void()> run;
};

// "must be 0 or more" style checks with short messages (CLI11's numeric ranges print the whole double range).
CLI::Validator at_least(double minimum);

// All of standard input (throws Error if it cannot be read).
std::string read_stdin();
// Writes `text` to stdout and flushes (throws Error if the write fails, e.g. a closed pipe).
void write_stdout(std::string_view text);

Command register_logits(CLI::App& root);
Command register_tokenize(CLI::App& root);
Command register_chat_template(CLI::App& root);
Command register_run(CLI::App& root);
Command register_chat(CLI::App& root);
Command register_bench(CLI::App& root);
Command register_quantize(CLI::App& root);
Command register_compare(CLI::App& root);
Command register_train(CLI::App& root);
Command register_serve(CLI::App& root);
Command register_rl(CLI::App& root);

}  // namespace whale::cli
