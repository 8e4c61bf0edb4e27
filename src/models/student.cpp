#include "mmkd/models/student.h"

#include "mmkd/core/error.h"

namespace mmkd::models {

int64_t conv1d_output_length(int64_t in, const ConvGeometry& g, int64_t dilation) {
  MMKD_CHECK(g.kernel >= 1 && g.stride >= 1 && g.padding >= 0 && dilation >= 1,
             "conv1d geometry: kernel ", g.kernel, ", stride ", g.stride, ", padding ", g.padding,
             " is invalid");
  const int64_t span = in + 2 * g.padding - dilation * (g.kernel - 1) - 1;
  return span < 0 ? 0 : span / g.stride + 1;
}

ConvGeometry same_length_geometry(int64_t kernel) {
  MMKD_CHECK(kernel >= 1 && kernel % 2 == 1, "a length-keeping Conv1D needs an odd kernel, got ",
             kernel);
  return {kernel, 1, (kernel - 1) / 2};
}

ConvGeometry downsample_geometry(int64_t in, int64_t out, int64_t same_kernel) {
  MMKD_CHECK(in >= 1 && out >= 1, "proxy lengths must be positive, got ", in, " -> ", out);
  MMKD_CHECK(out <= in, "a student proxy can only downsample: video length ", in, " cannot become ",
             out, " (use proxy_mode keep)");
  ConvGeometry g;
  if (out == in) {
    g = same_length_geometry(same_kernel);
  } else {
    g.stride = in / out;
    g.kernel = in - g.stride * (out - 1);
    g.padding = 0;
  }
  MMKD_CHECK(conv1d_output_length(in, g) == out, "internal: proxy geometry k=", g.kernel,
             " s=", g.stride, " p=", g.padding, " maps ", in, " to ", conv1d_output_length(in, g),
             ", not ", out);
  return g;
}

std::array<ConvGeometry, 3> proxy_geometries(const ModelConfig& config, const InputShape& shape) {
  const int64_t tv = shape.len[0];
  if (config.proxy_mode == ProxyMode::kKeep) {
    std::array<ConvGeometry, 3> result;
    for (size_t m = 0; m < 3; ++m) {
      result[m] = same_length_geometry(config.proxy_kernels.empty() ? config.conv_kernel
                                                                    : config.proxy_kernels[m]);
    }
    return result;
  }
  const int64_t ta = config.target_lengths.empty() ? shape.len[1] : config.target_lengths[0];
  const int64_t tl = config.target_lengths.empty() ? shape.len[2] : config.target_lengths[1];
  return {same_length_geometry(config.conv_kernel), downsample_geometry(tv, ta, config.conv_kernel),
          downsample_geometry(tv, tl, config.conv_kernel)};
}

StudentImpl::StudentImpl(const ModelConfig& config, const InputShape& shape)
    : MultimodalNetImpl(config, shape) {
  MMKD_CHECK(config_.role == Role::kStudent,
             "Student built from a teacher config: ", config_.describe());
  geometries_ = proxy_geometries(config_, shape_);
  const auto names = projection_names();
  for (size_t m = 0; m < 3; ++m) {
    const auto& g = geometries_[m];
    proxies[m] = register_module(
        names[m],
        torch::nn::Conv1d(torch::nn::Conv1dOptions(shape_.dim[0], config_.d_model, g.kernel)
                              .stride(g.stride)
                              .padding(g.padding)
                              .bias(false)));
  }
  build_stages();
}

int64_t StudentImpl::projection_parameter_count() const {
  int64_t total = 0;
  for (const auto& conv : proxies) total += conv->weight.numel();
  return total;
}

std::array<int64_t, 3> StudentImpl::projected_lengths(const InputShape& shape) const {
  std::array<int64_t, 3> lengths;
  for (size_t m = 0; m < 3; ++m) lengths[m] = conv1d_output_length(shape.len[0], geometries_[m]);
  return lengths;
}

void StudentImpl::project(const ModelInputs& inputs, std::array<torch::Tensor, 3>& sequences,
                          std::array<torch::Tensor, 3>& padding) {
  const auto& x = inputs.features[0];
  MMKD_CHECK(x.defined(), "student input: the video features are missing");
  MMKD_CHECK(x.dim() == 3 && x.size(2) == shape_.dim[0], "student input V: expected [B,T,",
             shape_.dim[0], "], got ", x.sizes());
  torch::Tensor video_padding;
  if (config_.mask_padding) {
    video_padding =
        inputs.padding[0].defined() ? inputs.padding[0].to(torch::kBool) : nn::zero_padding_mask(x);
  }
  const auto channels_first = x.transpose(1, 2);
  for (size_t m = 0; m < 3; ++m) {
    sequences[m] = proxies[m](channels_first).transpose(1, 2);
    if (!video_padding.defined()) continue;
    const auto& g = geometries_[m];
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

std::array<std::string, 3> StudentImpl::projection_names() const {
  return {"proxy_v", "proxy_a", "proxy_l"};
}

}  // namespace mmkd::models
