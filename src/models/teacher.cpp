#include "mmkd/models/teacher.h"

#include "mmkd/core/error.h"

namespace mmkd::models {

TeacherImpl::TeacherImpl(const ModelConfig& config, const InputShape& shape)
    : MultimodalNetImpl(config, shape) {
  MMKD_CHECK(config_.role == Role::kTeacher,
             "Teacher built from a student config: ", config_.describe());
  for (size_t m = 0; m < 3; ++m) {
    const auto& p = geometry_.sequences[m];
    if (p.identity) continue;
    projections[m] = register_module(
        p.module, torch::nn::Conv1d(torch::nn::Conv1dOptions(p.in_dim, p.width, p.conv.kernel)
                                        .padding(p.conv.padding)
                                        .bias(false)));
  }
  build_stages();
}

int64_t TeacherImpl::projection_parameter_count() const {
  int64_t total = 0;
  for (const auto& conv : projections) {
    if (conv) total += conv->weight.numel();
  }
  return total;
}

void TeacherImpl::project(const ModelInputs& inputs, std::array<torch::Tensor, 3>& sequences,
                          std::array<torch::Tensor, 3>& padding) {
  for (size_t m = 0; m < 3; ++m) {
    const auto& x = inputs.features[m];
    const auto letter = data::modality_letter(data::kModalities[m]);
    MMKD_CHECK(x.defined(), "teacher input: the ", letter, " features are missing");
    MMKD_CHECK(x.dim() == 3 && x.size(2) == geometry_.input.dim[m], "teacher input ", letter,
               ": expected [B,T,", geometry_.input.dim[m], "], got ", x.sizes());
    MMKD_CHECK(x.size(0) == inputs.features[0].size(0), "teacher input ", letter, ": batch ",
               x.size(0), " differs from video's ", inputs.features[0].size(0));
    auto input = x;
    // MulT drops out the raw text features (before its projection) in addition to the
    // transformers' embedding dropout.
    if (config_.mult_compat() && data::kModalities[m] == data::Modality::kText && is_training() &&
        config_.embed_dropout > 0) {
      input = torch::nn::functional::dropout(
          x, torch::nn::functional::DropoutFuncOptions().p(config_.embed_dropout).training(true));
    }
    sequences[m] = projections[m] ? projections[m](input.transpose(1, 2)).transpose(1, 2) : input;
    if (config_.mask_padding) {
      padding[m] = inputs.padding[m].defined() ? inputs.padding[m].to(torch::kBool)
                                               : nn::zero_padding_mask(x);
    }
  }
}

}  // namespace mmkd::models
