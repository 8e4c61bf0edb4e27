// Element-wise (inverted) dropout of the transformer layers. LibTorch's CPU dropout draws its
// mask element by element from one serial generator, a fifth of a training step at the study's
// shapes; here the mask is a counter hash (dropout_hash.h), applied and regenerated in one
// parallel pass each way, and never stored.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace mmkd::nn {

/// Which implementation apply_dropout() uses on CPU float32 tensors.
enum class DropoutKernel {
  kHashed,  ///< default: hashed_dropout()
  kTorch,   ///< LibTorch's dropout (the masks of mmkd before the hashed kernel)
};

/// Process-wide choice for apply_dropout() (benchmarks, tests); kHashed by default, or kTorch when
/// the environment variable MMKD_DROPOUT says "torch" at start-up.
void set_dropout_kernel(DropoutKernel kernel);
DropoutKernel dropout_kernel();
/// "hashed" or "torch".
const char* dropout_kernel_name(DropoutKernel kernel);

/// x with each element zeroed with probability p and the rest scaled by 1/(1-p) when training;
/// x itself otherwise. CPU float32 tensors take hashed_dropout() with a seed drawn from LibTorch's
/// default generator (so torch::manual_seed fixes the masks); other tensors, or the kTorch
/// kernel, take LibTorch's dropout.
torch::Tensor apply_dropout(const torch::Tensor& x, double p, bool training);

/// x * keep / (1-p), keep = hashed_dropout_keep(seed, x.numel(), p) over x's elements in
/// row-major order; CPU float32, p in [0,1). Differentiable in x: backward regenerates the mask.
/// The result is the same on any number of threads.
torch::Tensor hashed_dropout(const torch::Tensor& x, double p, uint64_t seed);

/// A seed for a hashed mask (element-wise or the fused attention's), drawn from LibTorch's default
/// generator so that torch::manual_seed fixes the masks.
uint64_t draw_dropout_seed();

/// The mask hashed_dropout() applies: bool [numel], true = kept (for tests).
torch::Tensor hashed_dropout_keep(uint64_t seed, int64_t numel, double p);

}  // namespace mmkd::nn
