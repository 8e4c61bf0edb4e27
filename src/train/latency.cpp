#include "mmkd/train/latency.h"

#include <algorithm>
#include <chrono>

#include "mmkd/train/graphed_step.h"

namespace mmkd::train {

nlohmann::json LatencyStats::to_json() const {
  return {{"batch_size", batch_size}, {"repeats", repeats}, {"median_ms", median_ms},
          {"p10_ms", p10_ms},         {"p90_ms", p90_ms},   {"cuda_graph", cuda_graph}};
}

namespace {
void synchronize(const torch::Device& device) {
  // A CUDA forward returns before the GPU finishes; time the work, not the launch.
  if (device.is_cuda()) torch::cuda::synchronize(device.index() < 0 ? -1 : device.index());
}
}  // namespace

LatencyStats measure_latency(models::MultimodalNet& model, int64_t batch_size,
                             const torch::Device& device, int64_t repeats, int64_t warmup,
                             bool cuda_graphs) {
  c10::InferenceMode inference;
  const bool was_training = model->is_training();
  model->eval();
  const models::InputShape& shape = model->input_shape();
  models::ModelInputs inputs;
  for (size_t m = 0; m < 3; ++m)
    inputs.features[m] = torch::randn({batch_size, shape.len[m], shape.dim[m]}, device);
  // On a GPU the forward of a small model is launch-bound: replay it from a CUDA graph.
  const std::unique_ptr<GraphedForward> graphed =
      device.is_cuda() && cuda_graphs ? make_graphed_forward(model, inputs) : nullptr;
  const auto forward = [&] {
    if (graphed) {
      graphed->run(inputs);
    } else {
      model->forward(inputs);
    }
  };
  for (int64_t i = 0; i < warmup; ++i) forward();
  synchronize(device);
  std::vector<double> times;
  for (int64_t i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    forward();
    synchronize(device);
    times.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
  }
  if (was_training) model->train();
  std::sort(times.begin(), times.end());
  const auto at = [&](double q) {
    return times[static_cast<size_t>(q * static_cast<double>(times.size() - 1) + 0.5)];
  };
  LatencyStats stats;
  stats.batch_size = batch_size;
  stats.repeats = repeats;
  stats.cuda_graph = graphed != nullptr;
  stats.median_ms = at(0.5);
  stats.p10_ms = at(0.1);
  stats.p90_ms = at(0.9);
  return stats;
}

nlohmann::json latency_record(models::MultimodalNet& model, const torch::Device& device) {
  return {{"batch_1", measure_latency(model, 1, device).to_json()},
          {"batch_64", measure_latency(model, 64, device, 5, 1).to_json()},
          {"threads", torch::get_num_threads()}};
}

}  // namespace mmkd::train
