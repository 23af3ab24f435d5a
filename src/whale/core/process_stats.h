// This process's memory use, as the kernel reports it (Linux /proc/self/status).
#pragma once

#include <cstdint>

namespace whale {

uint64_t resident_bytes();       // VmRSS: pages resident now, file-backed (mmap) ones included
uint64_t peak_resident_bytes();  // VmHWM

}  // namespace whale
