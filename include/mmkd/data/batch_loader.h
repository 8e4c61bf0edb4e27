// Deterministic, optionally shuffled mini-batches over one split.
#pragma once

#include <cstdint>

#include "mmkd/data/batch.h"
#include "mmkd/data/mosei_data.h"

namespace mmkd::data {

/// Padding mask of a feature tensor [N, T, F]: a step whose feature vector is all zero is padding
/// (MOSEI is zero-padded at the front). Returns bool [N, T].
torch::Tensor padding_mask(const torch::Tensor& features);

struct BatchLoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = true;     ///< a fresh permutation each epoch
  uint64_t seed = 0;       ///< with the epoch number, fixes the permutation
  bool drop_last = false;  ///< drop a final batch smaller than batch_size
};

/// Serves batches of a split. The order of epoch e depends only on (seed, e), so a run resumed at
/// epoch e sees exactly the batches an uninterrupted run would.
class BatchLoader {
 public:
  BatchLoader(const Split& split, BatchLoaderOptions options);

  int64_t num_samples() const { return num_samples_; }
  int64_t num_batches() const;
  const BatchLoaderOptions& options() const { return options_; }

  /// Fixes the sample order for `epoch` (call before batch()).
  void set_epoch(int64_t epoch);

  /// Batch `i` (0 <= i < num_batches()) of the current epoch.
  Batch batch(int64_t i) const;

 private:
  const Split& split_;
  BatchLoaderOptions options_;
  int64_t num_samples_;
  std::array<torch::Tensor, 3> padding_;  // precomputed once: bool [N, T_m]
  torch::Tensor classes_;                 // int64 [N]
  torch::Tensor order_;                   // int64 [N], this epoch's permutation
};

}  // namespace mmkd::data
