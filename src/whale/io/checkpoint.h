// A Hugging Face checkpoint directory: model.safetensors, or shards listed by model.safetensors.index.json.
// Every shard is mapped or read whole into memory, as FileLoad says.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "whale/io/safetensors.h"

namespace whale {

class Checkpoint {
 public:
  // Called while shards are read (FileLoad::Read): bytes read so far and in all, over all shards.
  using ReadProgress = std::function<void(uint64_t done, uint64_t total)>;

  // Opens the tensors of `dir`, its shards brought in as `load` says (Auto resolved against all the shards' bytes);
  // throws Error naming the directory or file at fault.
  explicit Checkpoint(const std::filesystem::path& dir, FileLoad load = FileLoad::Map,
                      const ReadProgress& progress = nullptr);

  const std::filesystem::path& dir() const { return dir_; }
  bool has(const std::string& name) const { return location_.count(name) != 0; }
  // The tensor `name`; throws Error naming it (and the index, for sharded checkpoints) if absent.
  TensorView get(const std::string& name) const;
  std::vector<std::string> names() const;
  // Bytes of all shard files together.
  uint64_t total_file_bytes() const;
  // Bytes of the shards' memory in huge pages now (huge_page_bytes of core/process_stats.h over their
  // MappedFile::memory()).
  uint64_t huge_page_bytes() const;
  // How the shards came into memory: Map or Read.
  FileLoad load() const { return load_; }

 private:
  std::filesystem::path dir_;
  FileLoad load_ = FileLoad::Map;
  std::string index_path_;  // empty for a single model.safetensors
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, const SafetensorsFile*> location_;
};

}  // namespace whale
