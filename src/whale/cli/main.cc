// whale: one binary, one subcommand per capability. Errors are caught here, once: one line, non-zero exit.
#include <cstdio>
#include <exception>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "whale/cli/command.h"
#include "whale/core/error.h"
#include "whale/core/heap_policy.h"
#include "whale/kernels/matmul.h"

namespace whale::cli {

void add_load_option(CLI::App* app, FileLoad& load) {
  app->add_option_function<std::string>(
         "--load", [&load](const std::string& name) { load = parse_file_load(name); },
         "How the weights come into memory: read = read into memory backed by 2 MiB huge pages (decode streams "
         "through few TLB entries; 1-3 s per 10 GB held in the page cache, read by one thread per CPU, more in a VM "
         "whose host backs memory lazily; a private copy), mmap = map the files "
         "(instant and shared, but through whatever pages the page cache holds, often 4 KiB ones, which can slow "
         "decode by half), auto = read when the checkpoint fits in 3/4 of the available memory, else mmap "
         "(default: auto)")
      ->check(CLI::IsMember({"auto", "mmap", "read"}));
}

void add_activations_option(CLI::App* app, Activations& activations) {
  const char* const shown_default = activations == Activations::Bf16 ? "bf16" : "f32";
  app->add_option_function<std::string>(
         "--activations",
         [&activations](const std::string& name) {
           activations = parse_activations(name);
           if (activations == Activations::Bf16 && !rounds_bf16_activations())
             fmt::print(stderr,
                        "whale: note: --activations bf16 changes nothing on this CPU (it needs AVX512-BF16 without "
                        "AMX; AMX hosts run BF16 prompts on their own tiles): activations stay f32\n");
         },
         "What BF16 weights multiply their inputs with: bf16 = the activations rounded to bf16 first, as DeepSeek's "
         "reference model.py and llama.cpp compute (BF16 prompts about twice as fast on CPUs with the AVX512-BF16 dot "
         "instruction and no AMX, such as AMD Zen 4 and 5; decode at the same speed); f32 = the activations as "
         "computed, the most accurate products. CPUs without that instruction, and AMX hosts, compute f32 either way; "
         "q8/q4/FP8 weights are not affected (default: " + std::string(shown_default) + ")")
      ->check(CLI::IsMember({"f32", "bf16"}));
}

CLI::Validator at_least(double minimum) {
  return CLI::Validator(
      [minimum](std::string& value) -> std::string {
        double v = 0;
        try {
          size_t used = 0;
          v = std::stod(value, &used);
          if (used != value.size()) return "\"" + value + "\" is not a number";
        } catch (const std::exception&) {
          return "\"" + value + "\" is not a number";
        }
        if (!(v >= minimum)) return fmt::format("{} is out of range: must be {} or more", value, minimum);
        return "";
      },
      fmt::format(">={}", minimum));
}

std::string read_stdin() {
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (std::cin.bad()) whale::fail("cannot read standard input");
  return text;
}

void write_stdout(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (std::fflush(stdout) != 0) whale::fail("cannot write to stdout");
}

}  // namespace whale::cli

int main(int argc, char** argv) {
  whale::keep_large_allocations_in_heap();
  CLI::App app{"whale: run DeepSeek-architecture language models (V2, V2-Lite, V3, R1) on your own hardware.",
               "whale"};
  app.require_subcommand(1);
  app.footer("Run 'whale SUBCOMMAND --help' for the options of each subcommand.");

  const std::vector<whale::cli::Command> commands = {
      whale::cli::register_run(app),
      whale::cli::register_chat(app),
      whale::cli::register_logits(app),
      whale::cli::register_tokenize(app),
      whale::cli::register_chat_template(app),
      whale::cli::register_bench(app),
      whale::cli::register_quantize(app),
      whale::cli::register_compare(app),
      whale::cli::register_train(app),
      whale::cli::register_serve(app),
      whale::cli::register_rl(app),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    for (const auto& command : commands)
      if (command.app->parsed()) command.run();
  } catch (const whale::Error& e) {
    std::fprintf(stderr, "whale: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "whale: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "whale: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
