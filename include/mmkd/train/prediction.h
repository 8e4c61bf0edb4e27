// A video-only student's predictions for video features: `mmkd predict` and Model.predict() in
// Python.
#pragma once

#include <torch/torch.h>

#include <string>

#include "mmkd/models/multimodal_net.h"

namespace mmkd::train {

struct VideoPredictions {
  bool regression = false;
  torch::Tensor outputs;        ///< float32 [N, output_dim]: logits, or [N,1] sentiment
  torch::Tensor probabilities;  ///< float32 [N, 7] (classification; undefined in regression)
  torch::Tensor classes;        ///< int64 [N], the predicted class -3..3
};

/// Runs `model`, which must be a student, on video features [N,T,F] of its input shape, in
/// chunks of 256 without gradients; outputs on the CPU. `input` names the features' source in
/// errors (a wrong shape, a sample whose outputs are not finite).
VideoPredictions predict_video(models::MultimodalNet& model, const torch::Tensor& video,
                               const torch::Device& device, const std::string& input);

}  // namespace mmkd::train
