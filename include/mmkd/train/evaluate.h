// Evaluating a network on a split: loss, metrics and predictions (no gradients, eval mode).
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmkd/data/mosei_data.h"
#include "mmkd/models/multimodal_net.h"
#include "mmkd/train/metrics.h"

namespace mmkd::train {

struct EvalOptions {
  int64_t batch_size = 256;
  /// Modalities whose inputs are zeroed (missing-modality evaluation of a teacher).
  std::vector<data::Modality> drop;
  torch::Device device = torch::kCPU;
  /// What is evaluated, opening the error on a non-finite output ("epoch 3, validation").
  std::string context = "evaluation";
};

struct EvalResult {
  bool regression = false;
  double loss = 0.0;                     ///< mean task loss (cross-entropy or L1)
  torch::Tensor outputs;                 ///< [N, output_dim] logits or regression outputs, on CPU
  torch::Tensor predicted;               ///< int64 [N] predicted 7-class label
  ClassificationMetrics classification;  ///< always (regression: by clip-and-round)
  RegressionMetrics regression_metrics;  ///< regression mode only

  double accuracy() const { return classification.accuracy; }
  double f1_weighted() const { return classification.f1_weighted; }
  nlohmann::json to_json() const;
  std::string summary() const;
};

/// Evaluates `model` on every sample of `split` in order. A non-finite output or loss is never
/// a result: it throws an mmkd::Error naming `options.context` and the batch.
EvalResult evaluate(models::MultimodalNet& model, const data::Split& split,
                    const EvalOptions& options = {});

}  // namespace mmkd::train
