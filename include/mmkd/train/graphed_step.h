// Replaying a static-shape training step or inference forward from a CUDA graph: small models
// are launch-bound on a GPU, and a graph launches the whole step at once.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

#include "mmkd/data/batch.h"
#include "mmkd/models/multimodal_net.h"
#include "mmkd/train/objective.h"

namespace mmkd::train {

/// A training step's forward, loss and backward, captured once for the first full batch's
/// shapes. Batches of other shapes (the last, shorter one) run eagerly; when capture fails (an
/// op that cannot be captured, e.g. a host copy in a loss term) every batch runs eagerly and the
/// reason is printed once. Gradients are left in the parameters' .grad tensors, which the graph
/// owns: zero them in place between eager steps (compat::zero_grad_in_place), never free them.
class GraphedTrainStep {
 public:
  /// forward + loss + backward of one batch on the device; must not read values on the host.
  using StepFn = std::function<LossParts(const data::Batch&)>;
  virtual ~GraphedTrainStep() = default;
  /// The loss parts of `batch` (tensors on the device), gradients accumulated.
  virtual LossParts run(const data::Batch& batch) = 0;
  /// True once a graph has been captured (false: everything ran eagerly so far).
  virtual bool captured() const = 0;
};

/// A graphed step on `device` (CUDA) training `params`, or nullptr when mmkd was built without
/// CUDA or `device` is not CUDA.
std::unique_ptr<GraphedTrainStep> make_graphed_train_step(GraphedTrainStep::StepFn step,
                                                          std::vector<torch::Tensor> params,
                                                          const torch::Device& device);

/// One training step's forward, loss and backward: replayed by `graphed` when there is one (it
/// zeroes what it must itself), else `step` run eagerly after zeroing `optimizer`'s gradients in
/// place (2.x's zero_grad() would free them).
LossParts run_train_step(GraphedTrainStep* graphed, torch::optim::Optimizer& optimizer,
                         const GraphedTrainStep::StepFn& step, const data::Batch& batch);

/// An inference forward (logits only, under InferenceMode) captured for one input shape.
class GraphedForward {
 public:
  virtual ~GraphedForward() = default;
  /// Logits for `inputs` (same shapes as at capture), replayed from the graph.
  virtual torch::Tensor run(const models::ModelInputs& inputs) = 0;
};

/// Captures `model`'s forward on `example` (CUDA); nullptr without CUDA. Throws mmkd::Error
/// naming the reason when capture fails.
std::unique_ptr<GraphedForward> make_graphed_forward(models::MultimodalNet model,
                                                     const models::ModelInputs& example);

/// Whether a run on `device` replays its train step from a CUDA graph (`train.cuda_graphs`).
bool use_cuda_graphs(const std::string& setting, const torch::Device& device);

}  // namespace mmkd::train
