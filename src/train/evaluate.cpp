#include "mmkd/train/evaluate.h"

#include <cmath>

#include "mmkd/core/error.h"
#include "mmkd/data/batch_loader.h"
#include "mmkd/train/labels.h"
#include "mmkd/train/objective.h"

namespace mmkd::train {

nlohmann::json EvalResult::to_json() const {
  nlohmann::json j;
  j["loss"] = loss;
  j["classification"] = classification.to_json();
  if (regression) j["regression"] = regression_metrics.to_json();
  return j;
}

std::string EvalResult::summary() const {
  std::string text = "loss " + std::to_string(loss) + "  " + classification.summary();
  if (regression) text += "  " + regression_metrics.summary();
  return text;
}

namespace {
models::ModelInputs inputs_of(const data::Batch& batch, const std::vector<data::Modality>& drop) {
  models::ModelInputs inputs;
  inputs.features = batch.features;
  inputs.padding = batch.padding;
  for (data::Modality m : drop) {
    // A dropped modality is all zeros, hence all padding: it contributes no keys.
    inputs.features[data::modality_index(m)] = torch::zeros_like(batch.feature(m));
    inputs.padding[data::modality_index(m)] = torch::ones_like(batch.pad(m));
  }
  return inputs;
}
}  // namespace

EvalResult evaluate(models::MultimodalNet& model, const data::Split& split,
                    const EvalOptions& options) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  data::BatchLoaderOptions loader_options;
  loader_options.batch_size = options.batch_size;
  loader_options.shuffle = false;
  data::BatchLoader loader(split, loader_options);

  const models::ModelConfig& config = model->config();
  std::vector<torch::Tensor> outputs;
  double loss_sum = 0.0;
  for (int64_t i = 0; i < loader.num_batches(); ++i) {
    const data::Batch batch = loader.batch(i).to(options.device);
    const models::ModelOutput out = model->forward(inputs_of(batch, options.drop));
    const double loss = task_loss(config, out.logits, batch).item<double>();
    // A NaN would turn into confident-looking metrics (argmax of NaN is 0); stop here instead.
    MMKD_CHECK(std::isfinite(loss) && torch::isfinite(out.logits).all().item<bool>(),
               options.context, ", batch ", i + 1, " of ", loader.num_batches(),
               ": the network's outputs are not finite (loss ", loss, ")");
    loss_sum += loss * batch.size();
    outputs.push_back(out.logits.to(torch::kCPU));
  }
  if (was_training) model->train();

  EvalResult result;
  result.regression = config.output == models::OutputMode::kRegression;
  result.loss = loss_sum / static_cast<double>(split.size());
  result.outputs = torch::cat(outputs, 0);
  const torch::Tensor truth = sentiment_to_class(split.labels);
  if (result.regression) {
    result.predicted = sentiment_to_class(result.outputs.view(-1).to(torch::kDouble));
    result.regression_metrics = regression_metrics(result.outputs.view(-1), split.labels);
  } else {
    result.predicted = result.outputs.argmax(1);
  }
  result.classification = classification_metrics(result.predicted, truth, kNumSentimentClasses);
  return result;
}

}  // namespace mmkd::train
