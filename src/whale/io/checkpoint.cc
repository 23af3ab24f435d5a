#include "whale/io/checkpoint.h"

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "whale/core/error.h"
#include "whale/core/process_stats.h"

namespace whale {
namespace fs = std::filesystem;

namespace {

nlohmann::json read_json_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", path.string(), e.what());
  }
}

// Bytes of the files a load will bring in: the existing regular files among `paths` (the rest fail when opened).
uint64_t file_bytes(const std::set<fs::path>& paths) {
  uint64_t total = 0;
  std::error_code ec;
  for (const fs::path& p : paths) {
    const auto n = fs::is_regular_file(p, ec) ? fs::file_size(p, ec) : 0;
    if (!ec) total += n;
  }
  return total;
}

}  // namespace

Checkpoint::Checkpoint(const fs::path& dir, FileLoad load, const ReadProgress& progress) : dir_(dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("{}: model directory not found", dir.string());
  const fs::path index = dir / "model.safetensors.index.json";
  const fs::path single = dir / "model.safetensors";

  // Every tensor's shard from the index, each name checked to be a file of `dir`, before any shard is opened: the
  // shards' sizes resolve Auto and pace the progress.
  std::vector<std::pair<std::string, std::string>> entries;  // tensor, shard file name
  std::set<fs::path> shard_paths;
  if (fs::exists(index, ec)) {
    index_path_ = index.string();
    const nlohmann::json j = read_json_file(index);
    const auto map = j.find("weight_map");
    if (!j.is_object() || map == j.end() || !map->is_object())
      fail("{}: missing \"weight_map\" object", index_path_);
    for (const auto& [name, file] : map->items()) {
      if (!file.is_string()) fail("{}: weight_map.{} is not a file name", index_path_, name);
      const std::string& shard = file.get_ref<const std::string&>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
        fail("{}: weight_map.{} names \"{}\", which is not a file in the model directory", index_path_, name, shard);
      const fs::path shard_path = dir / shard;
      if (!fs::exists(shard_path, ec))
        fail("{}: weight_map.{} names shard {}, which does not exist", index_path_, name, shard_path.string());
      entries.emplace_back(name, shard);
      shard_paths.insert(shard_path);
    }
  } else {
    shard_paths.insert(single);
  }
  const uint64_t total = file_bytes(shard_paths);
  load_ = resolve_file_load(load, total);
  uint64_t done_before = 0;  // bytes of the shards already read
  auto open_shard = [&](const fs::path& path) {
    FileReadProgress file_progress;
    if (progress) file_progress = [&](uint64_t done) { progress(done_before + done, total); };
    auto shard = std::make_unique<SafetensorsFile>(path.string(), load_, file_progress);
    done_before += shard->file_size();
    return shard;
  };

  if (!index_path_.empty()) {
    std::map<std::string, const SafetensorsFile*> by_file;
    for (const auto& [name, shard] : entries) {
      auto it = by_file.find(shard);
      if (it == by_file.end()) {
        shards_.push_back(open_shard(dir / shard));
        it = by_file.emplace(shard, shards_.back().get()).first;
      }
      if (!it->second->has(name))
        fail("{}: tensor {} is listed in {} but that shard does not contain it", it->second->path(), name,
             index_path_);
      location_[name] = it->second;
    }
  } else if (fs::exists(single, ec)) {
    shards_.push_back(open_shard(single));
    for (const auto& [name, entry] : shards_.back()->header().tensors) location_[name] = shards_.back().get();
  } else {
    size_t n_shards = 0;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".safetensors") ++n_shards;
    if (n_shards > 0)
      fail("{}: {} .safetensors shards but no model.safetensors.index.json to say which tensor is where",
           dir.string(), n_shards);
    fail("{}: no model.safetensors or model.safetensors.index.json", dir.string());
  }
}

TensorView Checkpoint::get(const std::string& name) const {
  const auto it = location_.find(name);
  if (it != location_.end()) return it->second->view(name);
  if (!index_path_.empty()) {
    for (const auto& shard : shards_)
      if (shard->has(name))
        fail("{}: no entry for tensor {} (it is present in {})", index_path_, name, shard->path());
    fail("{}: no entry for required tensor {}", index_path_, name);
  }
  fail("{}: missing required tensor {}", shards_.front()->path(), name);
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, file] : location_) out.push_back(name);
  return out;
}

uint64_t Checkpoint::huge_page_bytes() const {
  std::vector<std::pair<uintptr_t, uintptr_t>> ranges;
  for (const auto& s : shards_) ranges.push_back(s->memory());
  return whale::huge_page_bytes(ranges);
}

uint64_t Checkpoint::total_file_bytes() const {
  uint64_t total = 0;
  for (const auto& s : shards_) total += s->file_size();
  return total;
}

}  // namespace whale
