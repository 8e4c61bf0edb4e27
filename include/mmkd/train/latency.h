// Inference latency of a network: warmed up, repeated, median and spread.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "mmkd/models/multimodal_net.h"

namespace mmkd::train {

struct LatencyStats {
  int64_t batch_size = 1;
  int64_t repeats = 0;
  double median_ms = 0, p10_ms = 0, p90_ms = 0;
  bool cuda_graph = false;  ///< replayed from a CUDA graph (on a GPU)

  nlohmann::json to_json() const;
};

/// Times `model` forward (InferenceMode, eval, no taps) on random inputs of the model's own input
/// shape at `batch_size`: `warmup` untimed calls, then `repeats` timed ones. On a CUDA device
/// the forward is replayed from a CUDA graph unless `cuda_graphs` is false.
LatencyStats measure_latency(models::MultimodalNet& model, int64_t batch_size,
                             const torch::Device& device, int64_t repeats = 20, int64_t warmup = 3,
                             bool cuda_graphs = true);

/// What a run records as its latency (metrics.json "latency", or latency.json after
/// `mmkd latency --write`): batch 1 (20 repeats) and batch 64 (5 repeats), and the intra-op
/// thread count they ran with.
nlohmann::json latency_record(models::MultimodalNet& model, const torch::Device& device);

}  // namespace mmkd::train
