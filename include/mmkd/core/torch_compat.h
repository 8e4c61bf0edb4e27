// The one place where mmkd adapts to the LibTorch it is built against: Debian's 1.13 (CPU) and
// the PyPI wheel's 2.x (CUDA build). Everything else calls these functions and never tests a
// version itself.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#include <string>
#include <vector>

/// True when the LibTorch headers are at least major.minor.
#define MMKD_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||       \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace mmkd::compat {

/// "1.13.1", "2.15.0": the LibTorch the library was compiled against.
std::string torch_version();

/// True when mmkd was built against a LibTorch with CUDA (the CUDA-only files are compiled in).
/// Says nothing about a GPU being present: see torch::cuda::is_available().
bool built_with_cuda();

/// True when LibTorch has the fused scaled_dot_product_attention (2.0 and later).
bool has_sdpa();

/// softmax(q k^T/sqrt(d_k) + mask) v with LibTorch's fused kernel (flash / memory-efficient on
/// CUDA). q [B,H,Tq,d_k], k/v [B,H,Tk,d_k]; `mask` additive float broadcastable to
/// [B,H,Tq,Tk] or undefined. Every row of the mask must keep at least one key (the fused kernels
/// give NaN for an empty row). Throws on LibTorch without it (check has_sdpa()).
torch::Tensor sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                   const torch::Tensor& mask, double dropout_p);

/// True when LibTorch has the single-kernel Adam (`_fused_adam_`, 2.x) for tensors on `device`.
bool has_fused_adam(const torch::Device& device);

/// Hyper-parameters of one Adam update (PyTorch's Adam: weight decay added to the gradient).
struct AdamHyper {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

/// One Adam step over all `params` in one fused kernel. `steps` are float32 scalars holding each
/// parameter's step count including this step (the kernel does not increment them). Throws
/// where has_fused_adam() is false.
void fused_adam_step(const std::vector<torch::Tensor>& params,
                     const std::vector<torch::Tensor>& grads,
                     const std::vector<torch::Tensor>& exp_avgs,
                     const std::vector<torch::Tensor>& exp_avg_sqs,
                     const std::vector<torch::Tensor>& steps, const AdamHyper& hyper);

/// Turns autocast on for `device_type` with `dtype` (bf16), or off. The API moved between 1.13
/// (set_enabled / set_cpu_enabled) and 2.x (set_autocast_enabled(device_type, ...)).
void set_autocast(torch::DeviceType device_type, bool enabled, torch::ScalarType dtype);
bool autocast_enabled(torch::DeviceType device_type);
/// False where bf16 autocast cannot run mmkd's models: 1.13's CPU LayerNorm rejects a bf16 input
/// with float32 weights.
bool bf16_autocast_supported(torch::DeviceType device_type);

/// Autocast on for its lifetime (nothing when `dtype` is undefined), restored after.
class AutocastGuard {
 public:
  AutocastGuard(torch::DeviceType device_type, c10::optional<torch::ScalarType> dtype);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  torch::DeviceType device_type_;
  bool active_ = false;
  bool was_enabled_ = false;
};

}  // namespace mmkd::compat

namespace mmkd::compat {

/// `optimizer`'s state for parameter `p`, or nullptr before its first step.
torch::optim::AdamParamState* find_adam_param_state(torch::optim::Adam& optimizer,
                                                    const torch::Tensor& p);

/// `optimizer`'s state for parameter `p`, created (zero moments, step 0) when it has none yet.
/// The state map's key type differs between 1.13 (a string) and 2.x (the TensorImpl pointer).
torch::optim::AdamParamState& adam_param_state(torch::optim::Adam& optimizer,
                                               const torch::Tensor& p);

/// Sets every parameter's gradient to zero in place, keeping the tensors (a CUDA graph writes
/// into them). 2.x's zero_grad() would free them.
void zero_grad_in_place(torch::optim::Optimizer& optimizer);

}  // namespace mmkd::compat
