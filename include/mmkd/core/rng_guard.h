// Keeps LibTorch's default CPU random stream untouched across a block of code.
#pragma once

#include <torch/torch.h>

namespace mmkd {

/// Saves the default CPU generator's state and restores it on destruction. Work that needs
/// random numbers but must not shift the training stream (building a teacher that is then
/// overwritten by a checkpoint, initialising distillation heads) runs inside one, so that a
/// distillation run with beta = 0 draws exactly the dropout masks of the student trained alone.
class RngStateGuard {
 public:
  RngStateGuard() {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    state_ = generator.get_state();
  }
  ~RngStateGuard() {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(state_);
  }
  RngStateGuard(const RngStateGuard&) = delete;
  RngStateGuard& operator=(const RngStateGuard&) = delete;

 private:
  torch::Tensor state_;
};

}  // namespace mmkd
