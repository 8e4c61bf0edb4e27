#include "mmkd/core/device_memory.h"

namespace mmkd {

// Defined in src/cuda/cuda_memory.cpp, compiled only against a CUDA LibTorch.
#ifdef MMKD_WITH_CUDA
void reset_peak_cuda_memory(int device);
int64_t peak_cuda_memory_bytes(int device);
#endif

void reset_peak_device_memory(const torch::Device& device) {
#ifdef MMKD_WITH_CUDA
  if (device.is_cuda()) reset_peak_cuda_memory(device.has_index() ? device.index() : 0);
#endif
  (void)device;
}

int64_t peak_device_memory_bytes(const torch::Device& device) {
#ifdef MMKD_WITH_CUDA
  if (device.is_cuda()) return peak_cuda_memory_bytes(device.has_index() ? device.index() : 0);
#endif
  (void)device;
  return -1;
}

}  // namespace mmkd
