// The multimodal teacher: MulT with per-modality Conv1D projections, cross-modal transformers
// and branch memories, in the paper's four configurations (complete, video/audio/language branch).
#pragma once

#include "mmkd/models/multimodal_net.h"

namespace mmkd::models {

/// Per-modality Conv1D projection to width d without bias (MulT's nn.Conv1d(orig_d, d, k,
/// bias=False)), padding (k-1)/2 so the length is kept; then the configuration's transformers.
/// All three projections exist in every configuration (each branch reads all modalities).
class TeacherImpl : public MultimodalNetImpl {
 public:
  TeacherImpl(const ModelConfig& config, const InputShape& shape);

  int64_t projection_parameter_count() const override;

  /// proj_v, proj_a, proj_l (null where the geometry says identity: MulT mode, kernel 1, input
  /// width == d).
  std::array<torch::nn::Conv1d, 3> projections{nullptr, nullptr, nullptr};

 protected:
  void project(const ModelInputs& inputs, std::array<torch::Tensor, 3>& sequences,
               std::array<torch::Tensor, 3>& padding) override;
};
TORCH_MODULE(Teacher);

}  // namespace mmkd::models
