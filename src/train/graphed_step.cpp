#include "mmkd/train/graphed_step.h"

#include "mmkd/core/error.h"
#include "mmkd/core/torch_compat.h"

namespace mmkd::train {

// Defined in src/cuda/cuda_graph_step.cpp, which is compiled only against a CUDA LibTorch.
#ifdef MMKD_WITH_CUDA
std::unique_ptr<GraphedTrainStep> make_cuda_graphed_train_step(GraphedTrainStep::StepFn step,
                                                               std::vector<torch::Tensor> params,
                                                               const torch::Device& device);
std::unique_ptr<GraphedForward> make_cuda_graphed_forward(models::MultimodalNet model,
                                                          const models::ModelInputs& example);
#endif

std::unique_ptr<GraphedTrainStep> make_graphed_train_step(GraphedTrainStep::StepFn step,
                                                          std::vector<torch::Tensor> params,
                                                          const torch::Device& device) {
#ifdef MMKD_WITH_CUDA
  if (device.is_cuda()) {
    return make_cuda_graphed_train_step(std::move(step), std::move(params), device);
  }
#endif
  (void)step, (void)params, (void)device;
  return nullptr;
}

std::unique_ptr<GraphedForward> make_graphed_forward(models::MultimodalNet model,
                                                     const models::ModelInputs& example) {
#ifdef MMKD_WITH_CUDA
  for (const auto& f : example.features) {
    if (f.defined() && f.is_cuda()) return make_cuda_graphed_forward(model, example);
  }
#endif
  (void)model, (void)example;
  return nullptr;
}

LossParts run_train_step(GraphedTrainStep* graphed, torch::optim::Optimizer& optimizer,
                         const GraphedTrainStep::StepFn& step, const data::Batch& batch) {
  if (graphed != nullptr) return graphed->run(batch);
  compat::zero_grad_in_place(optimizer);
  return step(batch);
}

bool use_cuda_graphs(const std::string& setting, const torch::Device& device) {
  if (setting == "off") return false;
  if (setting == "on") {
    MMKD_CHECK(device.is_cuda(), "config key 'train.cuda_graphs': on needs a CUDA device, got ",
               device.str());
    MMKD_CHECK(compat::built_with_cuda(), "config key 'train.cuda_graphs': on, but mmkd was ",
               "built against LibTorch ", compat::torch_version(), " without CUDA");
    return true;
  }
  return device.is_cuda() && compat::built_with_cuda();
}

}  // namespace mmkd::train
