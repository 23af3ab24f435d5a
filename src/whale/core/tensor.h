// A read-only view of one tensor's bytes inside a mapped checkpoint file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "whale/core/dtype.h"

namespace whale {

struct TensorView {
  std::string name;
  std::string file;  // the file that holds the bytes, for error messages
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // may be unaligned
  size_t nbytes = 0;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// "[576, 7168]"
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace whale
