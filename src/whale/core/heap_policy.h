// How this process's heap treats the large, short-lived buffers of a forward pass. Call once, at the start of main,
// in every program that runs the engine (the whale binary, the kernel benchmarks), so that they measure alike.
#pragma once

namespace whale {

// The forward pass allocates and frees activation buffers of megabytes for every layer and matmul pass. glibc serves
// blocks that big with fresh mmaps and unmaps them on free, so every use paid page faults and kernel zeroing again
// (about a fifth of a 512-token prefill). This keeps them in the heap, where the second use of a buffer is free. No
// effect outside glibc.
void keep_large_allocations_in_heap();

}  // namespace whale
