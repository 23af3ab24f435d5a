// Writes safetensors files (huggingface/safetensors README, "Format") tensor by tensor, without holding the model in
// memory, and the model.safetensors.index.json of a sharded checkpoint.
//
// Layout: the header JSON is padded with spaces so the data buffer starts at a multiple of 64 bytes. The format
// forbids holes in the data buffer (every byte belongs to a tensor), so tensors are not padded apart; instead they
// are laid out in decreasing order of alignment class, the largest power of two <= 64 that divides the tensor's byte
// size (stable within a class). Every tensor then starts at a multiple of its class: whale's q8 / q4 block data
// (multiples of 64 bytes) are 64-byte aligned, their f16 scales at least 8-byte aligned, and every element of every
// tensor is naturally aligned.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "whale/core/dtype.h"

namespace whale {

struct TensorSpec {
  std::string name;
  DType dtype = DType::F32;  // a safetensors dtype (not Q8 / Q4: those are stored as U8)
  std::vector<int64_t> shape;

  uint64_t nbytes() const;
};

class SafetensorsWriter {
 public:
  // Creates (truncates) `path` and writes the header. Throws Error naming the file if it cannot be created or
  // written, or if a spec is invalid (duplicate or empty name, dtype without a safetensors name).
  SafetensorsWriter(std::string path, std::vector<TensorSpec> tensors,
                    const std::map<std::string, std::string>& metadata = {});
  // Without finish(), closes and removes the incomplete file (if it is a regular file).
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // The tensors in data order: their bytes must be written in this order.
  const std::vector<TensorSpec>& order() const { return order_; }
  // The tensor the next write() must name (empty once every tensor is complete).
  const std::string& current() const;
  // Appends n bytes of tensor `name`, which must be current(); a tensor may come in several pieces.
  void write(const std::string& name, const void* data, size_t n);
  // Checks that every tensor is complete, flushes and closes. Errors (e.g. disk full) name the file.
  void finish();

  const std::string& path() const { return path_; }
  uint64_t file_bytes() const { return data_start_ + data_bytes_; }
  uint64_t data_start() const { return data_start_; }

 private:
  void flush();
  void write_raw(const void* data, size_t n);
  [[noreturn]] void io_fail(const char* what, int err);

  std::string path_;
  int fd_ = -1;
  bool finished_ = false;
  bool regular_ = false;  // a regular file, removed if left incomplete
  std::vector<TensorSpec> order_;
  uint64_t data_start_ = 0;
  uint64_t data_bytes_ = 0;
  size_t index_ = 0;       // tensor being written
  uint64_t written_ = 0;   // bytes of it written so far
  std::vector<uint8_t> buffer_;
};

// Writes DIR/model.safetensors.index.json: {"metadata": {"total_size": N}, "weight_map": {tensor: shard file}}.
void write_safetensors_index(const std::string& path, uint64_t total_size,
                             const std::map<std::string, std::string>& weight_map);

}  // namespace whale
