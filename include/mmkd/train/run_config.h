// A whole run's configuration: data, model, training and (optionally) distillation sections.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "mmkd/data/data_config.h"
#include "mmkd/models/model_config.h"

namespace mmkd::train {

/// The most intra-op threads a run may ask for: 4 per core. Far more threads than cores only
/// make OpenMP's barriers spin, so a typo (`threads: 10000`) is refused instead of crawling.
int64_t max_threads();

/// The `train:` section. Defaults are the paper's (SPEC §6).
struct TrainConfig {
  int64_t epochs = 100;           ///< passes over the training split
  int64_t batch_size = 64;        ///< training mini-batch
  int64_t eval_batch_size = 256;  ///< validation/test mini-batch (no effect on results)
  double lr = 1e-3;               ///< Adam learning rate
  double weight_decay = 0.0;      ///< Adam weight decay
  double clip = 0.8;              ///< gradient-norm clipping (MulT); 0 disables
  int64_t patience = 10;          ///< ReduceLROnPlateau patience (validation loss)
  double factor = 0.5;            ///< ReduceLROnPlateau factor
  /// Stop once this many epochs have passed without a new lowest validation loss (training to
  /// convergence within `epochs`); 0 = always train all `epochs`.
  int64_t early_stop = 0;
  int64_t seed = 0;            ///< initialisation, batch order and dropout
  int64_t threads = 0;         ///< LibTorch intra-op threads; 0 = one per core others leave free
  std::string device = "cpu";  ///< cpu | cuda | cuda:N
  bool progress = true;        ///< live batch progress bar when stderr is a terminal
  std::string adam = "auto";   ///< auto | loop | fused: how Adam's step runs (adam_step.h)
  std::string cuda_graphs = "auto";  ///< auto | on | off: replay the train step from a CUDA graph
                                     ///< (auto = on when device is CUDA; on needs CUDA)
  std::string autocast = "off";      ///< off | bf16: bf16 autocast of the forward and loss

  void validate(const std::string& path = "train") const;
};

TrainConfig parse_train_config(const YAML::Node& node, const std::string& path = "train");
YAML::Node to_yaml(const TrainConfig& config);

/// Everything a run needs, plus the resolved YAML that is written beside its results.
struct RunConfig {
  data::DataConfig data;
  models::ModelConfig model;
  TrainConfig train;
  YAML::Node distill;  ///< the `distill:` section, parsed by the distillation layer
  std::string source;  ///< the file it came from (for messages)

  /// Defaults filled in, overrides applied: what the run actually used.
  YAML::Node resolved() const;
};

/// Parses a whole config tree strictly (top-level keys: data, model, train, distill).
RunConfig parse_run_config(const YAML::Node& root, const std::string& source);

/// Loads `path` (with includes), applies `key.path=value` overrides, parses.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides = {});

}  // namespace mmkd::train
