// libFuzzer target: parse_safetensors_header on arbitrary bytes. It must either return a header whose every entry
// satisfies the guarantees later reads rely on, or throw whale::Error; anything else (a crash, a sanitizer report,
// another exception type, a broken guarantee) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>

#include "whale/core/dtype.h"
#include "whale/core/error.h"
#include "whale/io/safetensors.h"

namespace {

// Aborts (a libFuzzer crash with the input saved) when a promised property does not hold.
void require(bool ok) {
  if (!ok) std::abort();
}

void check(const whale::SafetensorsHeader& h, size_t size) {
  require(h.data_start >= 8 && h.data_start <= size);
  const uint64_t buffer = size - h.data_start;
  for (const auto& [name, e] : h.tensors) {
    require(name != "__metadata__");
    require(e.begin <= e.end && e.end <= buffer);
    // numel × dtype size equals the byte range, computed without overflow.
    unsigned __int128 bytes = whale::dtype_size(e.dtype);
    for (int64_t d : e.shape) {
      require(d >= 0);
      bytes *= static_cast<uint64_t>(d);
      if (bytes > std::numeric_limits<uint64_t>::max()) bytes = std::numeric_limits<uint64_t>::max();
    }
    require(bytes == e.end - e.begin);
  }
  // Non-empty ranges are pairwise disjoint.
  for (auto a = h.tensors.begin(); a != h.tensors.end(); ++a)
    for (auto b = std::next(a); b != h.tensors.end(); ++b) {
      const auto& x = a->second;
      const auto& y = b->second;
      if (x.begin < x.end && y.begin < y.end) require(x.end <= y.begin || y.end <= x.begin);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    check(whale::parse_safetensors_header(data, size), size);
  } catch (const whale::Error&) {
    // Rejected input: the expected outcome for most of it.
  }
  return 0;
}
