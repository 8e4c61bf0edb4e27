// Peak memory of an accelerator, for benchmarks (the CPU's is ru_maxrss, in bench.h).
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace mmkd {

/// Forgets the peak so far of LibTorch's caching allocator on `device` (nothing on the CPU).
void reset_peak_device_memory(const torch::Device& device);

/// Peak bytes allocated by LibTorch on `device` since the last reset; -1 on the CPU or in a
/// build without CUDA.
int64_t peak_device_memory_bytes(const torch::Device& device);

}  // namespace mmkd
