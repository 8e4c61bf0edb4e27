// The performance benchmark behind `mmkd bench`: train step and inference timings, CPU and
// memory counters, the model's analytic cost and the machine's measured ceilings.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "mmkd/models/multimodal_net.h"
#include "mmkd/train/objective.h"

namespace mmkd::train {

/// Median and spread of repeated timings (milliseconds).
struct TimingStats {
  int64_t repeats = 0;
  double median_ms = 0, p10_ms = 0, p90_ms = 0, min_ms = 0, max_ms = 0;

  static TimingStats of(std::vector<double> ms);
  nlohmann::json to_json() const;
};

/// getrusage(RUSAGE_SELF) at one instant, plus the current resident set.
struct ResourceSample {
  double wall_s = 0, user_s = 0, sys_s = 0;
  int64_t minor_faults = 0, major_faults = 0;
  int64_t max_rss_bytes = 0;      ///< ru_maxrss: the high-water mark so far
  int64_t current_rss_bytes = 0;  ///< /proc/self/statm (0 where unavailable)

  static ResourceSample now();
};

/// What the CPU did between two samples.
struct ResourceUse {
  double wall_s = 0, user_s = 0, sys_s = 0;
  int64_t minor_faults = 0, major_faults = 0;

  static ResourceUse between(const ResourceSample& a, const ResourceSample& b);
  /// sys / (user + sys).
  double system_share() const;
  nlohmann::json to_json() const;
};

/// The machine's limits as LibTorch reaches them with the current thread count.
struct Ceilings {
  int64_t threads = 0;
  int64_t matmul_n = 0;      ///< n of the n x n x n float32 matmul timed
  double matmul_gflops = 0;  ///< its median rate
  int64_t copy_bytes = 0;    ///< size of the tensor copied
  double copy_gbytes_s = 0;  ///< median (read + write) bytes per second of that copy

  nlohmann::json to_json() const;
};

/// Times a large matmul and a large tensor copy (a few repeats each, median).
Ceilings measure_ceilings(int64_t matmul_n = 2048, int64_t copy_mib = 256, int64_t repeats = 5);

/// The model's analytic cost per sample, counted from its configuration and input shape.
struct ModelCost {
  double forward_flops = 0;    ///< matmuls and convolutions of one forward, 2 flops per MAC
  double attention_flops = 0;  ///< of which QK^T and AV (dense, masked entries included)
  /// One forward in inference mode: with the last-step readout a read-out transformer computes
  /// one query row in its last layer (self form) or in every layer (cross form); its keys and
  /// values still cover every step.
  double inference_flops = 0;
  double train_flops = 0;  ///< forward + backward ~ 3x forward
  int64_t parameters = 0;
  double parameter_bytes = 0;   ///< float32 parameters
  double activation_bytes = 0;  ///< activations a training step keeps per sample, without
                                ///< [Tq,Tk] maps (the fused attention path)
  double map_bytes = 0;         ///< what materialised attention adds per sample (logits,
                                ///< softmax, dropout mask and dropped weights of every layer)
  nlohmann::json to_json() const;
};

ModelCost analytic_cost(const models::MultimodalNetImpl& net);

/// The machine's 1, 5 and 15-minute load averages (/proc/loadavg), or "unknown": printed beside
/// every timing, since another process on these cores changes it.
std::string load_average();

struct BenchOptions {
  int64_t batch = 24;   ///< training batch
  int64_t repeats = 5;  ///< timed train steps (and 4x as many inference calls)
  int64_t warmup = 1;   ///< untimed train steps before
  std::vector<int64_t> inference_batches{1, 64};
  bool train = true;
  bool inference = true;
  bool ceilings = true;
  double lr = 1e-3;
  double clip = 0.8;
  uint64_t seed = 0;
  torch::Device device = torch::kCPU;  ///< where model, objective and batch live
  bool cuda_graphs = false;   ///< CUDA: replay train step and inference forward from graphs
  std::string adam = "auto";  ///< train.adam's values: auto | loop | fused
};

struct TrainStepResult {
  TimingStats step;
  double samples_per_s = 0;
  ResourceUse cpu;  ///< over the timed steps
  double minor_faults_per_step = 0;
  int64_t rss_before_bytes = 0;    ///< current RSS before the first step
  int64_t peak_rss_bytes = 0;      ///< ru_maxrss after the steps
  int64_t peak_delta_bytes = 0;    ///< peak_rss - max(rss_before, high-water before)
  int64_t peak_device_bytes = -1;  ///< CUDA: peak allocated by LibTorch over the steps
  bool cuda_graph = false;         ///< the timed steps replayed a captured graph
  nlohmann::json to_json() const;
};

struct InferenceResult {
  int64_t batch = 1;
  TimingStats latency;
  ResourceUse cpu;
  nlohmann::json to_json() const;
};

struct BenchResult {
  std::string model;  ///< config description
  std::string shape;  ///< input shape description
  std::string objective;
  int64_t threads = 0;
  std::string attention_kernel;  ///< fused | reference | sdpa
  std::string dropout_kernel;    ///< hashed | torch
  std::string device = "cpu";
  std::string load_average;      ///< /proc/loadavg at start
  int64_t parallel_threads = 0;  ///< threads our own kernels' parallel loops actually use
  ModelCost cost;
  bool has_train = false;
  TrainStepResult train;
  std::vector<InferenceResult> inference;
  bool has_ceilings = false;
  Ceilings ceilings;

  nlohmann::json to_json() const;
  /// Human-readable report, every figure beside the limit it is measured against.
  std::string to_text() const;
};

/// Random inputs of the model's input shape (features ~ N(0,1), no padding) and labels.
data::Batch random_batch(const models::InputShape& shape, int64_t batch, uint64_t seed);

/// Runs inference timings first (so the training peak is what ru_maxrss shows next), then the
/// train step (forward + objective + backward + clip + Adam), then the ceilings. `objective`
/// computes the loss, as in the trainer (a distillation objective plugs in the same way).
BenchResult run_bench(models::MultimodalNet& model, Objective& objective,
                      const BenchOptions& options);

}  // namespace mmkd::train
