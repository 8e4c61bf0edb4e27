// The frozen teacher's outputs for the whole training split, computed once per run. A teacher in
// eval mode gives a sample the same outputs every epoch, so running it on every batch of every
// epoch repeats the same work; the cache runs it once and serves each batch's rows from memory.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

#include "mmkd/data/mosei_data.h"
#include "mmkd/models/multimodal_net.h"

namespace mmkd::distill {

class TeacherCache {
 public:
  /// Runs `teacher` (frozen, on `device`) over `split` in order, `batch_size` samples at a time,
  /// keeping the outputs `taps` asks for in host memory. Returns nullptr, with the reason in
  /// `declined`, when they would take more than `budget_bytes`: the run then computes the
  /// teacher per batch, as without a cache.
  static std::unique_ptr<TeacherCache> build(models::MultimodalNet& teacher,
                                             const models::TapRequest& taps,
                                             const data::Split& split, const torch::Device& device,
                                             int64_t budget_bytes, int64_t batch_size,
                                             std::string* declined);

  /// The outputs of the samples `index` (int64 [B], positions in the split) on `device`: the
  /// same tensors, up to float rounding, as the teacher's forward on those samples.
  models::ModelOutput lookup(const torch::Tensor& index, const torch::Device& device) const;

  int64_t num_samples() const { return num_samples_; }
  int64_t bytes() const { return bytes_; }

 private:
  explicit TeacherCache(models::ModelOutput rows);

  models::ModelOutput rows_;  // every tensor [N, ...]: the split's samples along dim 0
  int64_t num_samples_ = 0;
  int64_t bytes_ = 0;
};

/// Calls `fn` on every defined tensor of `output` (logits, penultimate, each layer's taps), in a
/// fixed order.
void for_each_tensor(models::ModelOutput& output, const std::function<void(torch::Tensor&)>& fn);

}  // namespace mmkd::distill
