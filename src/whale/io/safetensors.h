// safetensors: an 8-byte little-endian header length N, N bytes of JSON describing each tensor, then the raw bytes
// (huggingface/safetensors README, "Format"). Parsing validates everything a later read relies on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "whale/core/dtype.h"
#include "whale/core/mapped_file.h"
#include "whale/core/tensor.h"

namespace whale {

struct SafetensorsEntry {
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the data buffer, [begin, end)
  uint64_t end = 0;
};

struct SafetensorsHeader {
  std::map<std::string, SafetensorsEntry> tensors;
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // offset of the data buffer in the file
};

// Parses and validates the header of a safetensors file held in bytes[0, size): JSON well-formed, known dtypes,
// non-negative shapes, byte ranges equal to numel x dtype size and inside the file. Throws Error (no file name; the
// caller adds it). Safe on any input: this is the fuzz target's entry point.
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, size_t size);

// One safetensors file in memory (mapped or read, see FileLoad) and its parsed header.
class SafetensorsFile {
 public:
  // Maps or reads `path` and parses it; errors name the path.
  explicit SafetensorsFile(const std::string& path, FileLoad load = FileLoad::Map,
                           const FileReadProgress& progress = nullptr);

  const std::string& path() const { return file_.path(); }
  const SafetensorsHeader& header() const { return header_; }
  bool has(const std::string& name) const { return header_.tensors.count(name) != 0; }
  // A view of tensor `name`; throws Error naming the file if it is absent.
  TensorView view(const std::string& name) const;
  size_t file_size() const { return file_.size(); }
  std::pair<uintptr_t, uintptr_t> memory() const { return file_.memory(); }  // MappedFile::memory

 private:
  MappedFile file_;
  SafetensorsHeader header_;
};

}  // namespace whale
