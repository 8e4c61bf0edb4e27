// Peak memory of LibTorch's CUDA caching allocator. Compiled only against a CUDA LibTorch.
#include <c10/cuda/CUDACachingAllocator.h>

#include <cstddef>
#include <cstdint>

namespace mmkd {

void reset_peak_cuda_memory(int device) {
  c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device));
}

int64_t peak_cuda_memory_bytes(int device) {
  const auto stats =
      c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
  // Index 0 of a StatArray is the aggregate over all pool types.
  return stats.allocated_bytes[0].peak;
}

}  // namespace mmkd
