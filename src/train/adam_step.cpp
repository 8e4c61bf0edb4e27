#include "mmkd/train/adam_step.h"

#include <vector>

#include "mmkd/core/error.h"
#include "mmkd/core/torch_compat.h"

namespace mmkd::train {

AdamKernel resolve_adam_kernel(const std::string& setting, const torch::Device& device,
                               const std::string& key) {
  if (setting == "loop") return AdamKernel::kLoop;
  if (setting == "auto") {
    return device.is_cuda() && compat::has_fused_adam(device) ? AdamKernel::kFused
                                                              : AdamKernel::kLoop;
  }
  MMKD_CHECK(setting == "fused", "config key '", key, "': expected auto, loop or fused, got '",
             setting, "'");
  MMKD_CHECK(compat::has_fused_adam(device), "config key '", key, "': fused: LibTorch ",
             compat::torch_version(), " has no fused Adam kernel for ", device.str(),
             " (CUDA needs 2.0, the CPU 2.4); use auto or loop");
  return AdamKernel::kFused;
}

namespace {

void fused_group_step(torch::optim::Adam& optimizer, torch::optim::OptimizerParamGroup& group) {
  const auto& options = static_cast<const torch::optim::AdamOptions&>(group.options());
  MMKD_CHECK(!options.amsgrad(), "fused Adam: amsgrad is not supported");
  std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs;
  std::vector<torch::optim::AdamParamState*> states;
  std::vector<double> step_counts;
  for (auto& p : group.params()) {
    if (!p.grad().defined()) continue;
    auto& state = compat::adam_param_state(optimizer, p);
    params.push_back(p);
    grads.push_back(p.grad());
    exp_avgs.push_back(state.exp_avg());
    exp_avg_sqs.push_back(state.exp_avg_sq());
    states.push_back(&state);
    step_counts.push_back(static_cast<double>(state.step() + 1));
  }
  if (params.empty()) return;
  // The kernel wants each parameter's step count, already incremented (as PyTorch's Adam does
  // before calling it), as a float scalar on its device: one copy for all of them.
  const auto steps =
      torch::tensor(step_counts, torch::kFloat32).to(params.front().device()).unbind(0);
  compat::AdamHyper hyper;
  hyper.lr = options.lr();
  hyper.beta1 = std::get<0>(options.betas());
  hyper.beta2 = std::get<1>(options.betas());
  hyper.eps = options.eps();
  hyper.weight_decay = options.weight_decay();
  compat::fused_adam_step(params, grads, exp_avgs, exp_avg_sqs,
                          std::vector<torch::Tensor>(steps.begin(), steps.end()), hyper);
  for (auto* state : states) state->step(state->step() + 1);
}

}  // namespace

void adam_step(torch::optim::Adam& optimizer, AdamKernel kernel) {
  if (kernel == AdamKernel::kLoop) {
    optimizer.step();
    return;
  }
  for (auto& group : optimizer.param_groups()) fused_group_step(optimizer, group);
}

void move_adam_state_to_params(torch::optim::Adam& optimizer) {
  torch::NoGradGuard no_grad;
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) {
      auto* state = compat::find_adam_param_state(optimizer, p);
      if (state == nullptr) continue;
      state->exp_avg(state->exp_avg().to(p.device()));
      state->exp_avg_sq(state->exp_avg_sq().to(p.device()));
      if (state->max_exp_avg_sq().defined()) {
        state->max_exp_avg_sq(state->max_exp_avg_sq().to(p.device()));
      }
    }
  }
}

}  // namespace mmkd::train
