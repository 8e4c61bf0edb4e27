// CUDA-graph capture of the training step and the inference forward. Compiled only against a
// CUDA LibTorch (CMakeLists.txt adds src/cuda/ when TORCH_CUDA_LIBRARIES is set).
#include <ATen/autocast_mode.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <iostream>

#include "mmkd/core/error.h"
#include "mmkd/train/graphed_step.h"

namespace mmkd::train {

namespace {

// PyTorch's recipe: a few eager iterations on a side stream before capture let lazy
// initialisation (cuBLAS handles, autograd buffers, allocator pools) happen outside the graph.
constexpr int kWarmupIterations = 3;

/// fn(a's tensor, b's tensor) for every tensor slot of a batch; `a` may be const.
template <typename BatchA, typename Fn>
void for_each_tensor(BatchA& a, const data::Batch& b, Fn&& fn) {
  for (size_t m = 0; m < 3; ++m) {
    fn(a.features[m], b.features[m]);
    fn(a.padding[m], b.padding[m]);
    fn(a.events[m], b.events[m]);
  }
  fn(a.classes, b.classes);
  fn(a.targets, b.targets);
  fn(a.index, b.index);
}

data::Batch clone_batch(const data::Batch& batch) {
  data::Batch copy;
  for_each_tensor(copy, batch, [](torch::Tensor& to, const torch::Tensor& from) {
    if (from.defined()) to = from.clone();
  });
  return copy;
}

bool same_shapes(const data::Batch& captured, const data::Batch& batch) {
  bool same = true;
  for_each_tensor(captured, batch, [&](const torch::Tensor& a, const torch::Tensor& b) {
    same = same && a.defined() == b.defined() && (!a.defined() || a.sizes() == b.sizes());
  });
  return same;
}

void copy_batch(data::Batch& into, const data::Batch& from) {
  torch::NoGradGuard no_grad;
  for_each_tensor(into, from, [](torch::Tensor& to, const torch::Tensor& src) {
    if (src.defined()) to.copy_(src, /*non_blocking=*/true);
  });
}

class CudaGraphTrainStep : public GraphedTrainStep {
 public:
  CudaGraphTrainStep(StepFn step, std::vector<torch::Tensor> params, const torch::Device& device)
      : step_(std::move(step)), params_(std::move(params)), device_(device) {}

  LossParts run(const data::Batch& batch) override {
    if (!graph_ && !failed_) capture(batch);
    if (!graph_ || !same_shapes(static_batch_, batch)) {
      zero_grads();
      return step_(batch);
    }
    // The captured backward writes (not adds) the gradients into the tensors it allocated.
    copy_batch(static_batch_, batch);
    graph_->replay();
    return static_loss_;
  }

  bool captured() const override { return graph_ != nullptr; }

 private:
  void capture(const data::Batch& batch) {
    const c10::cuda::CUDAGuard device_guard(device_);
    static_batch_ = clone_batch(batch);
    auto side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device_.index());
    try {
      torch::cuda::synchronize();
      {
        const c10::cuda::CUDAStreamGuard stream_guard(side);
        for (int i = 0; i < kWarmupIterations; ++i) step_(static_batch_);
      }
      torch::cuda::synchronize();
      // Without gradients at capture, backward allocates them in the graph's pool and every
      // replay overwrites them: no zeroing between replayed steps.
      for (auto& p : params_) p.mutable_grad() = torch::Tensor();
      auto graph = std::make_unique<at::cuda::CUDAGraph>();
      // A cast cached in an autocast region would point at memory freed after capture.
      const bool cache = at::autocast::is_autocast_cache_enabled();
      at::autocast::set_autocast_cache_enabled(false);
      {
        const c10::cuda::CUDAStreamGuard stream_guard(side);
        graph->capture_begin();
        static_loss_ = step_(static_batch_);
        graph->capture_end();
      }
      at::autocast::set_autocast_cache_enabled(cache);
      torch::cuda::synchronize();
      graph_ = std::move(graph);
    } catch (const std::exception& e) {
      failed_ = true;
      std::cerr << "cuda graphs: capture failed, training eagerly (" << first_line(e.what())
                << ")\n";
    }
  }

  static std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

  void zero_grads() {
    torch::NoGradGuard no_grad;
    for (auto& p : params_) {
      if (p.grad().defined()) p.mutable_grad().zero_();
    }
  }

  StepFn step_;
  std::vector<torch::Tensor> params_;
  torch::Device device_;
  std::unique_ptr<at::cuda::CUDAGraph> graph_;
  data::Batch static_batch_;
  LossParts static_loss_;
  bool failed_ = false;
};

class CudaGraphForward : public GraphedForward {
 public:
  CudaGraphForward(models::MultimodalNet model, const models::ModelInputs& example)
      : model_(std::move(model)) {
    const c10::InferenceMode inference;
    for (size_t m = 0; m < 3; ++m) {
      if (example.features[m].defined()) inputs_.features[m] = example.features[m].clone();
      if (example.padding[m].defined()) inputs_.padding[m] = example.padding[m].clone();
    }
    const auto device = first_device(inputs_);
    const c10::cuda::CUDAGuard device_guard(device);
    auto side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index());
    try {
      torch::cuda::synchronize();
      {
        const c10::cuda::CUDAStreamGuard stream_guard(side);
        for (int i = 0; i < kWarmupIterations; ++i) model_->forward(inputs_);
      }
      torch::cuda::synchronize();
      graph_ = std::make_unique<at::cuda::CUDAGraph>();
      {
        const c10::cuda::CUDAStreamGuard stream_guard(side);
        graph_->capture_begin();
        logits_ = model_->forward(inputs_).logits;
        graph_->capture_end();
      }
      torch::cuda::synchronize();
    } catch (const std::exception& e) {
      MMKD_FAIL("cuda graphs: capturing the inference forward failed: ", e.what());
    }
  }

  torch::Tensor run(const models::ModelInputs& inputs) override {
    const c10::InferenceMode inference;
    for (size_t m = 0; m < 3; ++m) {
      if (inputs_.features[m].defined()) inputs_.features[m].copy_(inputs.features[m], true);
      if (inputs_.padding[m].defined()) inputs_.padding[m].copy_(inputs.padding[m], true);
    }
    graph_->replay();
    return logits_;
  }

 private:
  static torch::Device first_device(const models::ModelInputs& inputs) {
    for (const auto& f : inputs.features) {
      if (f.defined()) return f.device();
    }
    MMKD_FAIL("cuda graphs: the example inputs hold no tensor");
  }

  models::MultimodalNet model_;
  models::ModelInputs inputs_;
  std::unique_ptr<at::cuda::CUDAGraph> graph_;
  torch::Tensor logits_;
};

}  // namespace

std::unique_ptr<GraphedTrainStep> make_cuda_graphed_train_step(GraphedTrainStep::StepFn step,
                                                               std::vector<torch::Tensor> params,
                                                               const torch::Device& device) {
  return std::make_unique<CudaGraphTrainStep>(std::move(step), std::move(params), device);
}

std::unique_ptr<GraphedForward> make_cuda_graphed_forward(models::MultimodalNet model,
                                                          const models::ModelInputs& example) {
  return std::make_unique<CudaGraphForward>(std::move(model), example);
}

}  // namespace mmkd::train
