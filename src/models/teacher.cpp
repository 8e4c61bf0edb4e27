#include "mmkd/models/teacher.h"

#include "mmkd/core/error.h"

namespace mmkd::models {

TeacherImpl::TeacherImpl(const ModelConfig& config, const InputShape& shape)
    : MultimodalNetImpl(config, shape) {
  MMKD_CHECK(config_.role == Role::kTeacher,
             "Teacher built from a student config: ", config_.describe());
  const auto names = projection_names();
  const int64_t k = config_.conv_kernel;
  for (size_t m = 0; m < 3; ++m) {
    projections[m] = register_module(
        names[m], torch::nn::Conv1d(torch::nn::Conv1dOptions(shape_.dim[m], config_.d_model, k)
                                        .padding((k - 1) / 2)
                                        .bias(false)));
  }
  build_stages();
}

int64_t TeacherImpl::projection_parameter_count() const {
  int64_t total = 0;
  for (const auto& conv : projections) total += conv->weight.numel();
  return total;
}

std::array<int64_t, 3> TeacherImpl::projected_lengths(const InputShape& shape) const {
  return shape.len;  // odd kernel, padding (k-1)/2: lengths are kept
}

void TeacherImpl::project(const ModelInputs& inputs, std::array<torch::Tensor, 3>& sequences,
                          std::array<torch::Tensor, 3>& padding) {
  for (size_t m = 0; m < 3; ++m) {
    const auto& x = inputs.features[m];
    const auto letter = data::modality_letter(data::kModalities[m]);
    MMKD_CHECK(x.defined(), "teacher input: the ", letter, " features are missing");
    MMKD_CHECK(x.dim() == 3 && x.size(2) == shape_.dim[m], "teacher input ", letter,
               ": expected [B,T,", shape_.dim[m], "], got ", x.sizes());
    MMKD_CHECK(x.size(0) == inputs.features[0].size(0), "teacher input ", letter, ": batch ",
               x.size(0), " differs from video's ", inputs.features[0].size(0));
    sequences[m] = projections[m](x.transpose(1, 2)).transpose(1, 2);
    if (config_.mask_padding) {
      padding[m] = inputs.padding[m].defined() ? inputs.padding[m].to(torch::kBool)
                                               : nn::zero_padding_mask(x);
    }
  }
}

std::array<std::string, 3> TeacherImpl::projection_names() const {
  return {"proj_v", "proj_a", "proj_l"};
}

}  // namespace mmkd::models
