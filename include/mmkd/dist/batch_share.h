// Losses that average over a batch-dependent count (EDAM's valid map rows, masked logits), or
// keep state over the whole batch (CRD's memory banks, its Z), and stay exact when a global
// batch is split over ranks: the trainer marks each rank's share of a training step; batch_mean
// divides by the count of the whole global batch, gather_rows and sum_over_shares give a loss
// the global batch's rows and sums.
#pragma once

#include <torch/torch.h>

#include <optional>

namespace mmkd::dist {

/// Where a rank's share lies in the global batch.
struct ShareRows {
  int64_t begin = 0, end = 0;  ///< this rank's rows [begin, end) of the global batch
  int64_t rows = 0;            ///< the global batch's rows
  /// A batch with fewer rows than ranks: every rank computes all of it (at weight 1/W).
  bool replicated = false;
};

/// Marks the forward and loss of one rank's share of a distributed training step, whose loss
/// the trainer multiplies by `weight` (the share's rows over the global batch's) before the
/// gradients are summed over the ranks. Every rank must run the same losses in the same order
/// while it lives: batch_mean, gather_rows and sum_over_shares then take part in collectives.
class BatchShare {
 public:
  BatchShare(double weight, ShareRows rows);
  ~BatchShare();
  BatchShare(const BatchShare&) = delete;
  BatchShare& operator=(const BatchShare&) = delete;
};

/// sum / max(count, 1). Inside a BatchShare, `count` is summed over the ranks first (one scalar
/// all-reduce) and the result is divided by the share's weight, so that the ranks' weighted
/// shares add up to the global batch's mean, as one process computes it; elsewhere (one
/// process, validation) this is the plain mean.
torch::Tensor batch_mean(const torch::Tensor& sum, const torch::Tensor& count);

/// This rank's rows of a global batch split over the ranks: set inside a BatchShare whose batch
/// is split (not replicated), nullopt elsewhere.
std::optional<ShareRows> split_share();

/// Inside a split share: the global batch's rows of `part` ([end-begin, ...], this share's
/// rows, on the CPU) from every rank in batch order, by one all-reduce of a zero-padded tensor
/// (exact: each element is summed with zeros only). Elsewhere: `part`.
torch::Tensor gather_rows(const torch::Tensor& part);

/// Inside a split share: `value` (on the CPU) summed over the ranks; elsewhere `value`.
torch::Tensor sum_over_shares(const torch::Tensor& value);

}  // namespace mmkd::dist
