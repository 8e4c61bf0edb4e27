// The training loop: epochs of Adam steps with clipping, validation, plateau schedule,
// best/last checkpoints, log.csv, progress, and exact resume.
#pragma once

#include <functional>
#include <string>

#include "mmkd/core/thread_budget.h"
#include "mmkd/data/mosei_data.h"
#include "mmkd/dist/batch_share.h"
#include "mmkd/models/multimodal_net.h"
#include "mmkd/train/adam_step.h"
#include "mmkd/train/graphed_step.h"
#include "mmkd/train/objective.h"
#include "mmkd/train/run_config.h"
#include "mmkd/train/run_dir.h"

namespace mmkd::train {

/// One epoch's numbers, as logged in log.csv.
struct EpochRecord {
  int64_t epoch = 0;  ///< 1-based
  double train_loss = 0, train_task = 0, train_kd = 0;
  double val_loss = 0, val_accuracy = 0, val_f1 = 0;
  double lr = 0;
  double seconds = 0;
  std::string extra;  ///< objective-specific columns (already CSV-escaped), e.g. event mass
};

struct FitResult {
  int64_t epochs_completed = 0;
  double best_val_loss = 0;
  int64_t best_epoch = 0;
  bool resumed = false;
};

class Trainer {
 public:
  /// `model` must be built from config.model and already seeded; `objective` computes the loss.
  Trainer(RunConfig config, RunDir dir, models::MultimodalNet model, Objective& objective,
          const data::MoseiData& data);

  /// Trains to config.train.epochs. With `resume`, continues from dir.last() (same weights at
  /// the end as an uninterrupted run: same seed, one thread).
  FitResult fit(bool resume);

  /// Called after each epoch's validation; may fill record.extra (header from extra_header).
  std::function<void(EpochRecord&)> on_epoch;
  std::string extra_header;

 private:
  double train_epoch(int64_t epoch, torch::optim::Adam& optimizer, EpochRecord& record);
  /// Forward (under autocast when configured), loss and backward of one batch.
  LossParts forward_backward(const data::Batch& batch);
  void write_log() const;
  void restore_log(int64_t epochs);
  /// Follows the cores other processes leave free (train.threads = 0), between batches.
  void follow_thread_budget();
  /// In a distributed run: refuses ranks started differently and gives all rank 0's weights.
  void join_ranks();
  /// In a distributed run: refuses ranks whose objective state (CRD's banks) has drifted apart.
  void check_ranks_agree(int64_t epoch);
  /// `value` as rank 0 computed it (itself in a single-process run).
  double lead_value(double value);

  RunConfig config_;
  RunDir dir_;
  models::MultimodalNet model_;
  Objective& objective_;
  const data::MoseiData& data_;
  torch::Device device_;
  AdamKernel adam_kernel_;
  c10::optional<torch::ScalarType> autocast_;  ///< bf16 when train.autocast says so
  models::TapRequest taps_;
  std::unique_ptr<GraphedTrainStep> graphed_;  ///< set when the step replays from a CUDA graph
  std::vector<EpochRecord> log_;
  ThreadBudget thread_budget_;
  double loss_weight_ = 1.0;    ///< this rank's share of the global batch (1 in one process)
  dist::ShareRows share_rows_;  ///< where that share lies in the global batch
  double reduce_seconds_ = 0;
  int64_t reduce_steps_ = 0;
};

/// The device named by a config ("cpu", "cuda", "cuda:1"); a clear error when CUDA is absent.
torch::Device parse_device(const std::string& name);

}  // namespace mmkd::train
