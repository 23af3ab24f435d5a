#include "whale/core/process_stats.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <string>

namespace whale {
namespace {

// The value of a "Key:   N kB" line of /proc/self/status or smaps into kib, if `line` is key's.
bool field_kib(const std::string& line, const std::string& key, uint64_t& kib) {
  if (line.size() <= key.size() || line.compare(0, key.size(), key) != 0 || line[key.size()] != ':') return false;
  kib = std::stoull(line.substr(key.size() + 1));
  return true;
}

uint64_t status_kib(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  uint64_t kib = 0;
  while (std::getline(in, line))
    if (field_kib(line, key, kib)) return kib;
  return 0;
}

}  // namespace

uint64_t resident_bytes() { return status_kib("VmRSS") * 1024; }
uint64_t peak_resident_bytes() { return status_kib("VmHWM") * 1024; }

bool reset_peak_resident() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

// smaps lists each mapping as a header line "start-end perms offset device inode [path]" followed by its "Key:   N kB"
// fields (a field's key ends in ':' before any space; a header's first ':' is the device's, after a space).
size_t huge_page_bytes(const std::vector<std::pair<uintptr_t, uintptr_t>>& ranges) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  uint64_t total_kib = 0, kib = 0;
  while (std::getline(smaps, line)) {
    uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR " ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
      inside = std::any_of(ranges.begin(), ranges.end(), [&](const auto& r) { return lo < r.second && hi > r.first; });
      continue;
    }
    if (inside && (field_kib(line, "AnonHugePages", kib) || field_kib(line, "FilePmdMapped", kib))) total_kib += kib;
  }
  return static_cast<size_t>(total_kib * 1024);
}

}  // namespace whale
