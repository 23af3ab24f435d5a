// This process's memory use, as the kernel reports it (Linux /proc/self/status and /proc/self/smaps).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace whale {

uint64_t resident_bytes();       // VmRSS: pages resident now, file-backed (mmap) ones included
uint64_t peak_resident_bytes();  // VmHWM
// Resets VmHWM to the current VmRSS (writes "5" to /proc/self/clear_refs, Linux 4.0+). False if the kernel refused.
bool reset_peak_resident();

// Bytes in huge pages now (smaps: AnonHugePages of anonymous memory, FilePmdMapped of file mappings) of the mappings
// that overlap any of `ranges` ([begin, end) pairs, e.g. MappedFile::memory() of a checkpoint's shards), each mapping
// counted once and in full: the kernel may merge the read regions of neighbouring shards into one mapping. 0 where
// smaps cannot be read. Small pages cost decode speed (each 4 KiB page a TLB entry and a stop for the hardware
// prefetcher).
size_t huge_page_bytes(const std::vector<std::pair<uintptr_t, uintptr_t>>& ranges);

}  // namespace whale
