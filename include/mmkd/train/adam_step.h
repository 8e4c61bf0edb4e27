// Adam's update, computed either by torch::optim::Adam's per-parameter loop or by LibTorch's
// single fused kernel over the same state (so checkpoints and --resume do not care which).
#pragma once

#include <torch/torch.h>

#include <string>

namespace mmkd::train {

/// How an Adam step is computed (`train.adam`).
enum class AdamKernel {
  kLoop,   ///< torch::optim::Adam::step(): a handful of ops per parameter
  kFused,  ///< one `_fused_adam_` kernel for all parameters (LibTorch 2.x; CPU from 2.4)
};

/// `train.adam`: auto (fused on CUDA where LibTorch has it, where a step is launch-bound; the
/// loop on the CPU, as mmkd has always trained there), loop, or fused (an error naming the key
/// where this LibTorch has no fused kernel for `device`).
AdamKernel resolve_adam_kernel(const std::string& setting, const torch::Device& device,
                               const std::string& key = "train.adam");

/// One update of every parameter of `optimizer` that has a gradient.
void adam_step(torch::optim::Adam& optimizer, AdamKernel kernel);

/// Moves the moments of `optimizer` to their parameters' devices (a checkpoint is read onto the
/// CPU, the run may train on a GPU).
void move_adam_state_to_params(torch::optim::Adam& optimizer);

}  // namespace mmkd::train
