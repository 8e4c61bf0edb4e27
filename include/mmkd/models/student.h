// The video-only student: three Conv1D "proxies" V_S, A_S, L_S of the video sequence, then one of
// the paper's five transformer architectures.
#pragma once

#include "mmkd/models/multimodal_net.h"

namespace mmkd::models {

/// Geometry of a Conv1D along time.
struct ConvGeometry {
  int64_t kernel = 1;
  int64_t stride = 1;
  int64_t padding = 0;
};

/// PyTorch's Conv1d output length: floor((in + 2p - dilation*(k-1) - 1) / s) + 1.
int64_t conv1d_output_length(int64_t in, const ConvGeometry& geometry, int64_t dilation = 1);

/// A length-keeping convolution: stride 1, padding (k-1)/2 (k odd).
ConvGeometry same_length_geometry(int64_t kernel);

/// A convolution mapping `in` steps to exactly `out` <= in steps without padding: stride
/// floor(in/out), kernel in - stride*(out-1) (>= stride, so every input step is covered); when
/// out == in, `same_kernel` with same-length padding. Checked with conv1d_output_length.
ConvGeometry downsample_geometry(int64_t in, int64_t out, int64_t same_kernel);

/// V_S, A_S, L_S geometries for a config (student) and input shape: downsample mode maps the
/// video length to [Tv, target audio, target text]; keep mode keeps the video length with
/// proxy_kernels (default conv_kernel).
std::array<ConvGeometry, 3> proxy_geometries(const ModelConfig& config, const InputShape& shape);

/// Student: proxies from the video features (no bias, as the teacher's projections), their
/// padding masks (same-length proxies reuse the video mask, as the teacher does; a downsampled
/// step is padding when its whole receptive window is padding), then the architecture's
/// transformers.
class StudentImpl : public MultimodalNetImpl {
 public:
  StudentImpl(const ModelConfig& config, const InputShape& shape);

  int64_t projection_parameter_count() const override;
  std::array<int64_t, 3> projected_lengths(const InputShape& shape) const override;
  const std::array<ConvGeometry, 3>& geometries() const { return geometries_; }

  /// proxy_v, proxy_a, proxy_l.
  std::array<torch::nn::Conv1d, 3> proxies{nullptr, nullptr, nullptr};

 protected:
  void project(const ModelInputs& inputs, std::array<torch::Tensor, 3>& sequences,
               std::array<torch::Tensor, 3>& padding) override;
  std::array<std::string, 3> projection_names() const override;

 private:
  std::array<ConvGeometry, 3> geometries_;
};
TORCH_MODULE(Student);

}  // namespace mmkd::models
