// A mini-batch as models and distillation consume it.
#pragma once

#include <torch/torch.h>

#include <array>

#include "mmkd/data/modality.h"

namespace mmkd::data {

/// Tensors of one mini-batch; arrays are indexed by modality_index().
struct Batch {
  std::array<torch::Tensor, 3> features;  ///< float32 [B, T_m, F_m]
  std::array<torch::Tensor, 3> padding;   ///< bool [B, T_m], true at zero-padded steps
  std::array<torch::Tensor, 3> events;    ///< bool [B, T_m] (undefined without ground truth)
  torch::Tensor classes;                  ///< int64 [B], 7-class label 0..6
  torch::Tensor targets;                  ///< float32 [B], continuous sentiment in [-3, 3]
  torch::Tensor index;                    ///< int64 [B], sample index within the split (CRD)

  int64_t size() const { return classes.size(0); }
  const torch::Tensor& feature(Modality m) const { return features[modality_index(m)]; }
  const torch::Tensor& pad(Modality m) const { return padding[modality_index(m)]; }

  /// A copy on `device` (non-blocking where the source is pinned).
  Batch to(const torch::Device& device) const;
};

}  // namespace mmkd::data
