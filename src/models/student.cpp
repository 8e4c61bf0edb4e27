#include "mmkd/models/student.h"

#include "mmkd/core/error.h"

namespace mmkd::models {

StudentImpl::StudentImpl(const ModelConfig& config, const InputShape& shape)
    : MultimodalNetImpl(config, shape) {
  MMKD_CHECK(config_.role == Role::kStudent,
             "Student built from a teacher config: ", config_.describe());
  for (size_t m = 0; m < 3; ++m) {
    const auto& p = geometry_.sequences[m];
    proxies[m] = register_module(
        p.module, torch::nn::Conv1d(torch::nn::Conv1dOptions(p.in_dim, p.width, p.conv.kernel)
                                        .stride(p.conv.stride)
                                        .padding(p.conv.padding)
                                        .bias(false)));
  }
  build_stages();
}

int64_t StudentImpl::projection_parameter_count() const {
  int64_t total = 0;
  for (const auto& conv : proxies) total += conv->weight.numel();
  return total;
}

void StudentImpl::project(const ModelInputs& inputs, std::array<torch::Tensor, 3>& sequences,
                          std::array<torch::Tensor, 3>& padding) {
  const auto& x = inputs.features[0];
  MMKD_CHECK(x.defined(), "student input: the video features are missing");
  MMKD_CHECK(x.dim() == 3 && x.size(2) == geometry_.input.dim[0], "student input V: expected [B,T,",
             geometry_.input.dim[0], "], got ", x.sizes());
  torch::Tensor video_padding;
  if (config_.mask_padding) {
    video_padding =
        inputs.padding[0].defined() ? inputs.padding[0].to(torch::kBool) : nn::zero_padding_mask(x);
  }
  const auto channels_first = x.transpose(1, 2);
  for (size_t m = 0; m < 3; ++m) {
    sequences[m] = proxies[m](channels_first).transpose(1, 2);
    if (!video_padding.defined()) continue;
    const auto& g = geometry_.sequences[m].conv;
    if (g.stride == 1 && conv1d_output_length(x.size(1), g) == x.size(1)) {
      padding[m] =
          video_padding;  // same length: step t is padding iff video step t is (as teacher)
      continue;
    }
    // Downsampled: a proxy step is padding when no real video step falls in its window.
    const auto valid = video_padding.logical_not().to(x.dtype()).unsqueeze(1);
    const auto window = torch::ones({1, 1, g.kernel}, valid.options());
    const auto seen = torch::conv1d(valid, window, {}, g.stride, g.padding).squeeze(1);
    padding[m] = seen <= 0;
  }
}

}  // namespace mmkd::models
