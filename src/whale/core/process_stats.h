// This process's memory use, as the kernel reports it (Linux /proc/self/status).
#pragma once

#include <cstdint>

namespace whale {

uint64_t resident_bytes();       // VmRSS: pages resident now, file-backed (mmap) ones included
uint64_t peak_resident_bytes();  // VmHWM
// Resets VmHWM to the current VmRSS (writes "5" to /proc/self/clear_refs, Linux 4.0+). False if the kernel refused.
bool reset_peak_resident();

}  // namespace whale
