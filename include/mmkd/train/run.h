// One training run end to end: data, seeded network, fit, test evaluation, metrics.json.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "mmkd/data/mosei_data.h"
#include "mmkd/models/multimodal_net.h"
#include "mmkd/train/checkpoint.h"
#include "mmkd/train/objective.h"
#include "mmkd/train/run_config.h"
#include "mmkd/train/run_metrics.h"
#include "mmkd/train/trainer.h"

namespace mmkd::train {

/// The input shape a network needs for `data` (lengths and dims of the train split).
models::InputShape input_shape_of(const data::MoseiData& data);

/// Sets LibTorch's intra-op threads: `threads`, or when 0 one per core other processes leave free
/// (ThreadBudget; LibTorch itself defaults to one per core, however busy they are).
void set_threads(int64_t threads);

/// Seeds LibTorch's default generator and builds the network of `config` for `shape`.
models::MultimodalNet build_seeded_model(const RunConfig& config, const models::InputShape& shape);

/// Evaluates the run's `best` checkpoint on test and measures latency; writes metrics.json once,
/// with `extra`'s keys added (a run is finished exactly when that file exists).
RunMetrics finish_run(const RunConfig& config, const RunDir& dir, const data::MoseiData& data,
                      const FitResult& fit, const nlohmann::json& extra = nlohmann::json::object());

/// The data a checkpoint was trained on, from its stored config.
data::MoseiData load_checkpoint_data(const CheckpointInfo& info);

/// `mmkd train`: trains the network of `config` alone (L_c only) in `run_dir`.
RunMetrics run_training(const RunConfig& config, const RunDir& dir, bool resume);

}  // namespace mmkd::train
