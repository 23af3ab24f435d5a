// Whole small files (JSON configs, tokenizer files, training data, texts) read into and written from memory.
#pragma once

#include <filesystem>
#include <string>

namespace whale {

// The bytes of `path`; throws Error naming it if it cannot be opened or read.
std::string read_text_file(const std::filesystem::path& path);
// Creates or truncates `path` with `text`; throws Error naming it if it cannot be created or written.
void write_text_file(const std::filesystem::path& path, const std::string& text);

}  // namespace whale
