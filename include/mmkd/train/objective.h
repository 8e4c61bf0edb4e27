// What a training step minimises: the task loss, optionally plus distillation terms.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "mmkd/data/batch.h"
#include "mmkd/models/multimodal_net.h"

namespace mmkd::train {

/// The loss of one batch, split into its parts for logging.
struct LossParts {
  torch::Tensor total;  ///< what is back-propagated
  torch::Tensor task;   ///< L_c: cross-entropy over classes (or L1 in regression mode)
  torch::Tensor kd;     ///< L_KD (undefined without distillation)
};

/// The task loss of a model's output: cross-entropy on the 7 classes, or MulT's L1 on the
/// continuous sentiment in regression mode.
torch::Tensor task_loss(const models::ModelConfig& config, const torch::Tensor& logits,
                        const data::Batch& batch);

/// A training objective. The plain one is the task loss; distillation adds heads and terms.
class Objective {
 public:
  virtual ~Objective() = default;

  /// Taps the trained network must capture for compute() (none by default).
  virtual models::TapRequest taps() const { return {}; }
  /// The loss of `output` on `batch`. `training` is false on validation batches.
  virtual LossParts compute(const data::Batch& batch, const models::ModelOutput& output,
                            bool training) = 0;
  /// Trainable parameters besides the network's (distillation heads).
  virtual std::vector<torch::Tensor> parameters() { return {}; }
  /// Extra state kept across a resume (distillation heads, memory banks).
  virtual void save(torch::serialize::OutputArchive& /*archive*/) const {}
  virtual void load(torch::serialize::InputArchive& /*archive*/) {}
  /// Moves heads and buffers to the training device.
  virtual void to(const torch::Device& /*device*/) {}
  /// Sets train/eval mode of any heads.
  virtual void set_training(bool /*on*/) {}
  /// Short name for logs ("task", "edam-down", ...).
  virtual std::string name() const = 0;
};

/// The student or teacher trained alone: Loss = L_c.
class TaskObjective : public Objective {
 public:
  explicit TaskObjective(models::ModelConfig config) : config_(std::move(config)) {}
  LossParts compute(const data::Batch& batch, const models::ModelOutput& output,
                    bool training) override;
  std::string name() const override { return "task"; }

 private:
  models::ModelConfig config_;
};

}  // namespace mmkd::train
