// Losses that average over a batch-dependent count (EDAM's valid map rows, masked logits) and
// stay exact when a global batch is split over ranks: the trainer marks each rank's share of a
// training step, and batch_mean divides by the count of the whole global batch.
#pragma once

#include <torch/torch.h>

namespace mmkd::dist {

/// Marks the forward and loss of one rank's share of a distributed training step, whose loss
/// the trainer multiplies by `weight` (the share's rows over the global batch's) before the
/// gradients are summed over the ranks. Every rank must run the same losses in the same order
/// while it lives: batch_mean then takes part in a collective.
class BatchShare {
 public:
  explicit BatchShare(double weight);
  ~BatchShare();
  BatchShare(const BatchShare&) = delete;
  BatchShare& operator=(const BatchShare&) = delete;
};

/// sum / max(count, 1). Inside a BatchShare, `count` is summed over the ranks first (one scalar
/// all-reduce) and the result is divided by the share's weight, so that the ranks' weighted
/// shares add up to the global batch's mean, as one process computes it; elsewhere (one
/// process, validation) this is the plain mean.
torch::Tensor batch_mean(const torch::Tensor& sum, const torch::Tensor& count);

}  // namespace mmkd::dist
