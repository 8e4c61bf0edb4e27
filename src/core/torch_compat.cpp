#include "mmkd/core/torch_compat.h"

#include <ATen/autocast_mode.h>

#include "mmkd/core/error.h"

namespace mmkd::compat {

std::string torch_version() { return TORCH_VERSION; }

bool built_with_cuda() {
#ifdef MMKD_WITH_CUDA
  return true;
#else
  return false;
#endif
}

bool has_sdpa() { return MMKD_TORCH_AT_LEAST(2, 0); }

torch::Tensor sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                   const torch::Tensor& mask, double dropout_p) {
#if MMKD_TORCH_AT_LEAST(2, 0)
  c10::optional<torch::Tensor> attn_mask;
  if (mask.defined()) attn_mask = mask.to(q.dtype());
  return at::scaled_dot_product_attention(q, k, v, attn_mask, dropout_p);
#else
  (void)q, (void)k, (void)v, (void)mask, (void)dropout_p;
  MMKD_FAIL("scaled_dot_product_attention needs LibTorch 2.0 or later; this build has ",
            torch_version());
#endif
}

bool has_fused_adam(const torch::Device& device) {
  // CUDA's fused Adam came with 2.0, the CPU kernel with 2.4.
  if (device.is_cuda()) return MMKD_TORCH_AT_LEAST(2, 0) && built_with_cuda();
  return device.is_cpu() && MMKD_TORCH_AT_LEAST(2, 4);
}

void fused_adam_step(const std::vector<torch::Tensor>& params,
                     const std::vector<torch::Tensor>& grads,
                     const std::vector<torch::Tensor>& exp_avgs,
                     const std::vector<torch::Tensor>& exp_avg_sqs,
                     const std::vector<torch::Tensor>& steps, const AdamHyper& hyper) {
#if MMKD_TORCH_AT_LEAST(2, 0)
  torch::NoGradGuard no_grad;
  at::_fused_adam_(params, grads, exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps, hyper.lr,
                   hyper.beta1, hyper.beta2, hyper.weight_decay, hyper.eps, /*amsgrad=*/false,
                   /*maximize=*/false);
#else
  (void)params, (void)grads, (void)exp_avgs, (void)exp_avg_sqs, (void)steps, (void)hyper;
  MMKD_FAIL("the fused Adam kernel needs LibTorch 2.x; this build has ", torch_version());
#endif
}

void set_autocast(torch::DeviceType device_type, bool enabled, torch::ScalarType dtype) {
#if MMKD_TORCH_AT_LEAST(2, 3)
  at::autocast::set_autocast_enabled(device_type, enabled);
  if (enabled) at::autocast::set_autocast_dtype(device_type, dtype);
#else
  if (device_type == torch::kCUDA) {
    at::autocast::set_enabled(enabled);
    if (enabled) at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    if (enabled) at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}

bool autocast_enabled(torch::DeviceType device_type) {
#if MMKD_TORCH_AT_LEAST(2, 3)
  return at::autocast::is_autocast_enabled(device_type);
#else
  return device_type == torch::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

bool bf16_autocast_supported(torch::DeviceType device_type) {
  if (device_type == torch::kCUDA) return built_with_cuda();
  return device_type == torch::kCPU && MMKD_TORCH_AT_LEAST(2, 0);
}

AutocastGuard::AutocastGuard(torch::DeviceType device_type, c10::optional<torch::ScalarType> dtype)
    : device_type_(device_type) {
  if (!dtype) return;
  MMKD_CHECK(device_type == torch::kCPU || device_type == torch::kCUDA,
             "autocast: only cpu and cuda devices are supported");
  was_enabled_ = autocast_enabled(device_type);
  set_autocast(device_type, true, *dtype);
  at::autocast::increment_nesting();
  active_ = true;
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  // As torch.autocast's __exit__: the cast cache lives while any autocast region is open.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast(device_type_, was_enabled_, torch::kBFloat16);
}

namespace {

#if MMKD_TORCH_AT_LEAST(2, 0)
void* state_key(const torch::Tensor& p) { return p.unsafeGetTensorImpl(); }
#else
std::string state_key(const torch::Tensor& p) {
  return c10::guts::to_string(p.unsafeGetTensorImpl());
}
#endif

}  // namespace

torch::optim::AdamParamState* find_adam_param_state(torch::optim::Adam& optimizer,
                                                    const torch::Tensor& p) {
  auto& states = optimizer.state();
  const auto found = states.find(state_key(p));
  return found == states.end() ? nullptr
                               : static_cast<torch::optim::AdamParamState*>(found->second.get());
}

torch::optim::AdamParamState& adam_param_state(torch::optim::Adam& optimizer,
                                               const torch::Tensor& p) {
  if (auto* state = find_adam_param_state(optimizer, p)) return *state;
  // As torch::optim::Adam::step() creates it.
  auto state = std::make_unique<torch::optim::AdamParamState>();
  state->step(0);
  state->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
  state->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
  auto* raw = state.get();
  optimizer.state()[state_key(p)] = std::move(state);
  return *raw;
}

void zero_grad_in_place(torch::optim::Optimizer& optimizer) {
  torch::NoGradGuard no_grad;
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) {
      if (p.grad().defined()) p.mutable_grad().zero_();
    }
  }
}

}  // namespace mmkd::compat
