// The video-only student: three Conv1D "proxies" V_S, A_S, L_S of the video sequence, then one of
// the paper's five transformer architectures.
#pragma once

#include "mmkd/models/multimodal_net.h"

namespace mmkd::models {

/// Student: proxies from the video features (no bias, as the teacher's projections), their
/// padding masks (same-length proxies reuse the video mask, as the teacher does; a downsampled
/// step is padding when its whole receptive window is padding), then the architecture's
/// transformers.
class StudentImpl : public MultimodalNetImpl {
 public:
  StudentImpl(const ModelConfig& config, const InputShape& shape);

  int64_t projection_parameter_count() const override;

  /// proxy_v, proxy_a, proxy_l.
  std::array<torch::nn::Conv1d, 3> proxies{nullptr, nullptr, nullptr};

 protected:
  void project(const ModelInputs& inputs, std::array<torch::Tensor, 3>& sequences,
               std::array<torch::Tensor, 3>& padding) override;
};
TORCH_MODULE(Student);

}  // namespace mmkd::models
