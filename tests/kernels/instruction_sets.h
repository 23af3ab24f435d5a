// Test helper: the instruction sets a kernel test runs its SIMD paths on.
#pragma once

#include <cstdint>
#include <vector>

#include <hwy/targets.h>

namespace whale {

// Every instruction set Highway compiled that this CPU supports, one bit each (for hwy::SetSupportedTargetsForTest).
inline std::vector<int64_t> supported_targets() {
  std::vector<int64_t> targets;
  for (int64_t bits = hwy::SupportedTargets(); bits != 0; bits &= bits - 1) targets.push_back(bits & -bits);
  return targets;
}

}  // namespace whale
