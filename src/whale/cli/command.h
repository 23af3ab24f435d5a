// A subcommand: its CLI11 node and the action run when it is chosen. Each cli/*.cc registers one.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "whale/core/mapped_file.h"
#include "whale/model/model.h"

namespace whale::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<void()> run;
};

// "must be 0 or more" style checks with short messages (CLI11's numeric ranges print the whole double range).
CLI::Validator at_least(double minimum);

// Adds --load auto|mmap|read (default auto), how the checkpoint's files come into memory (see FileLoad).
void add_load_option(CLI::App* app, FileLoad& load);

// The commands that run a model round BF16 weights' inputs to bf16 unless told otherwise: DeepSeek's model.py and the
// other CPU engines (llama.cpp, ik_llama.cpp) compute so, and on CPUs with the AVX512-BF16 dot instruction and no AMX
// it is what lets BF16 prompts run at the dot instruction's rate instead of f32 FMA's. The library's own default
// (Model) stays f32, the exact products, which the logits tests hold whale to with --activations f32.
inline constexpr Activations kDefaultActivations = Activations::Bf16;

// Adds --activations f32|bf16, whose default is `activations` as passed in (kDefaultActivations, or f32 for `compare`,
// which measures against the exact products): what BF16 weights multiply their inputs with (see Activations).
void add_activations_option(CLI::App* app, Activations& activations);

// All of standard input (throws Error if it cannot be read).
std::string read_stdin();
// Writes `text` to stdout and flushes (throws Error if the write fails, e.g. a closed pipe).
void write_stdout(std::string_view text);

// The embedded default model (models/whale-tiny-r1), used by run and chat when no --model is given.
inline constexpr const char* kDefaultModelName = "whale-tiny-r1";
// Its directory: $WHALE_DEFAULT_MODEL when set, else next to the build tree the binary is in, in an install's
// share/whale/models, or in the source tree the binary was built from (throws Error naming the places looked).
std::string default_model_dir();
// Adds an optional --model option whose help names the default model; resolve_model fills `model` with
// default_model_dir() when the option was not given.
void add_model_option_with_default(CLI::App* app, std::string& model);
void resolve_model(std::string& model);

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
