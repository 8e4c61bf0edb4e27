#include "mmkd/train/objective.h"

namespace mmkd::train {

torch::Tensor task_loss(const models::ModelConfig& config, const torch::Tensor& logits,
                        const data::Batch& batch) {
  if (config.output == models::OutputMode::kRegression)
    return torch::l1_loss(logits.view(-1), batch.targets.to(logits.dtype()));
  return torch::nn::functional::cross_entropy(logits, batch.classes);
}

LossParts TaskObjective::compute(const data::Batch& batch, const models::ModelOutput& output,
                                 bool /*training*/) {
  LossParts parts;
  parts.task = task_loss(config_, output.logits, batch);
  parts.total = parts.task;
  return parts;
}

}  // namespace mmkd::train
