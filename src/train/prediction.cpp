#include "mmkd/train/prediction.h"

#include "mmkd/core/error.h"
#include "mmkd/data/modality.h"
#include "mmkd/train/labels.h"

namespace mmkd::train {

namespace {

torch::Tensor outputs_in_chunks(models::MultimodalNet& model, const torch::Tensor& video,
                                const torch::Device& device) {
  const auto v = data::modality_index(data::Modality::kVideo);
  std::vector<torch::Tensor> outputs;
  for (int64_t start = 0; start < video.size(0); start += 256) {
    models::ModelInputs inputs;
    inputs.features[v] = video.slice(0, start, std::min(start + 256, video.size(0))).to(device);
    outputs.push_back(model->forward(inputs).logits.to(torch::kCPU));
  }
  const int64_t width = model->config().output == models::OutputMode::kRegression ? 1 : 7;
  return outputs.empty() ? torch::empty({0, width}) : torch::cat(outputs, 0);
}

/// Checked before anything is reported: a NaN would print as null, or as a confident class.
void check_finite_outputs(const torch::Tensor& out, const std::string& input) {
  const torch::Tensor bad = torch::isfinite(out).all(1).logical_not();
  if (!bad.any().item<bool>()) return;
  MMKD_FAIL(input, ": sample ", bad.nonzero()[0][0].item<int64_t>(), " (and ",
            bad.sum().item<int64_t>() - 1,
            " more) gives non-finite outputs; its features may hold values too large for float32 "
            "arithmetic");
}

}  // namespace

VideoPredictions predict_video(models::MultimodalNet& model, const torch::Tensor& video,
                               const torch::Device& device, const std::string& input) {
  MMKD_CHECK(model->config().role == models::Role::kStudent, input,
             ": the network is a teacher, which needs audio and text; predictions from video "
             "alone need a student");
  const auto& shape = model->input_shape();
  const auto v = data::modality_index(data::Modality::kVideo);
  MMKD_CHECK(video.dim() == 3, input, ": video features have shape ", video.sizes(),
             "; expected [N,T,F]");
  MMKD_CHECK(video.size(1) == shape.len[v] && video.size(2) == shape.dim[v], input,
             ": video features have shape [", video.size(1), ",", video.size(2),
             "] per sample; the student expects [", shape.len[v], ",", shape.dim[v], "]");
  MMKD_CHECK(video.scalar_type() == torch::kFloat, input, ": video features are ",
             video.scalar_type(), "; expected float32");
  c10::InferenceMode inference;
  VideoPredictions out;
  out.regression = model->config().output == models::OutputMode::kRegression;
  out.outputs = outputs_in_chunks(model, video, device);
  check_finite_outputs(out.outputs, input);
  if (out.regression) {
    out.classes = sentiment_to_class(out.outputs.select(1, 0)) - 3;
  } else {
    out.probabilities = torch::softmax(out.outputs, 1);
    out.classes = out.probabilities.argmax(1) - 3;
  }
  return out;
}

}  // namespace mmkd::train
