// A Hugging Face checkpoint directory: model.safetensors, or shards listed by model.safetensors.index.json.
// Every shard is mapped, never read into memory.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "whale/io/safetensors.h"

namespace whale {

class Checkpoint {
 public:
  // Opens the tensors of `dir`; throws Error naming the directory or file at fault.
  explicit Checkpoint(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  bool has(const std::string& name) const { return location_.count(name) != 0; }
  // The tensor `name`; throws Error naming it (and the index, for sharded checkpoints) if absent.
  TensorView get(const std::string& name) const;
  std::vector<std::string> names() const;
  // Bytes of all shard files together.
  uint64_t total_file_bytes() const;

 private:
  std::filesystem::path dir_;
  std::string index_path_;  // empty for a single model.safetensors
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, const SafetensorsFile*> location_;
};

}  // namespace whale
