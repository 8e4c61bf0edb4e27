// Checkpoints: a network with the config and input shape that rebuild it, and, for `last`, the
// whole training state (optimiser, scheduler, RNG, distillation heads) needed to resume.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>

#include "mmkd/models/multimodal_net.h"
#include "mmkd/train/objective.h"

namespace mmkd::train {

/// What a checkpoint records besides tensors.
struct CheckpointInfo {
  std::string config_yaml;     ///< the run's resolved config (YAML text)
  models::InputShape shape;    ///< input lengths and dims the network was built for
  int64_t epoch = 0;           ///< epochs completed
  double best_val_loss = 0.0;  ///< lowest validation loss so far
  int64_t best_epoch = 0;      ///< epoch that reached it
  std::string scheduler_json;  ///< PlateauScheduler state (empty in a deployable checkpoint)
};

/// The training state that travels in a `last` checkpoint.
struct TrainingState {
  torch::optim::Optimizer* optimizer = nullptr;
  Objective* objective = nullptr;
  bool rng = true;  ///< store / restore the default CPU generator (dropout)
};

/// The bytes `archive` serialises to, in memory (LibTorch's file writer throws from its
/// destructor when the disk fills; a buffer cannot fail that way).
std::string archive_bytes(torch::serialize::OutputArchive& archive);

/// Writes atomically (temporary file, then rename); a failed write (full disk) is one
/// mmkd::Error naming `path`, which keeps its previous content. `state` may be empty
/// (deployable network).
void save_checkpoint(const std::string& path, models::MultimodalNet& model,
                     const CheckpointInfo& info, const TrainingState& state = {});

/// Every load first checks each record of the archive against its CRC32 (verify_zip_crcs) and
/// refuses, naming the file, a damaged checkpoint; loaded weights must be finite.
///
/// Reads only the metadata (cheap relative to the tensors; no network is built).
CheckpointInfo read_checkpoint_info(const std::string& path);

/// Rebuilds the network a checkpoint holds from its own config and shape, loads its weights and
/// moves it to `device`. Errors name the file.
models::MultimodalNet load_model(const std::string& path, const torch::Device& device,
                                 CheckpointInfo* info = nullptr);

/// Loads weights (and, where given, training state) into an existing network; refuses, naming
/// both, a checkpoint of another architecture or shape.
CheckpointInfo load_checkpoint_into(const std::string& path, models::MultimodalNet& model,
                                    const TrainingState& state = {});

}  // namespace mmkd::train
