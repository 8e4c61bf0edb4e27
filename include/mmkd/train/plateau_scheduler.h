// PyTorch's ReduceLROnPlateau learning-rate scheduler for LibTorch optimisers.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace mmkd::train {

/// Options of torch.optim.lr_scheduler.ReduceLROnPlateau, with PyTorch's defaults except factor
/// (0.5) and patience (10), which follow the paper (SPEC §6).
struct PlateauSchedulerOptions {
  enum class Mode { kMin, kMax };
  enum class ThresholdMode { kRel, kAbs };

  Mode mode = Mode::kMin;                              ///< kMin: the metric should decrease
  double factor = 0.5;                                 ///< new_lr = lr * factor; must be < 1
  int64_t patience = 10;                               ///< bad epochs tolerated before reducing
  double threshold = 1e-4;                             ///< what counts as an improvement
  ThresholdMode threshold_mode = ThresholdMode::kRel;  ///< rel: best*(1-thr); abs: best-thr
  int64_t cooldown = 0;                                ///< epochs after a reduction with no count
  double min_lr = 0.0;                                 ///< lower bound of every group's lr
  double eps = 1e-8;                                   ///< reductions smaller than eps are skipped
};

/// The counters a checkpoint must keep to resume the schedule exactly.
struct PlateauSchedulerState {
  double best = 0.0;             ///< best metric so far (+inf / -inf before the first step)
  int64_t num_bad_epochs = 0;    ///< consecutive epochs without improvement
  int64_t cooldown_counter = 0;  ///< epochs of cooldown left
  int64_t last_epoch = 0;        ///< number of step() calls

  /// {"best", "num_bad_epochs", "cooldown_counter", "last_epoch"}; a non-finite best is written
  /// as the string "inf" / "-inf" (JSON has no infinity).
  nlohmann::json to_json() const;
  /// Inverse of to_json(); throws mmkd::Error naming the missing or mistyped key.
  static PlateauSchedulerState from_json(const nlohmann::json& j);
};

/// ReduceLROnPlateau, step for step as PyTorch 1.13's:
///
///   is_better(a, best): min/rel a < best*(1-thr); min/abs a < best-thr;
///                       max/rel a > best*(1+thr); max/abs a > best+thr
///   step(metric):
///     last_epoch += 1
///     if is_better(metric, best): best = metric; num_bad_epochs = 0
///     else: num_bad_epochs += 1
///     if cooldown_counter > 0: cooldown_counter -= 1; num_bad_epochs = 0
///     if num_bad_epochs > patience:
///       for each group: new = max(lr*factor, min_lr); if lr - new > eps: lr = new
///       cooldown_counter = cooldown; num_bad_epochs = 0
///
/// The learning rate is read and set on every param group of an Adam, AdamW, SGD, RMSprop or
/// Adagrad optimiser; other optimisers are rejected at construction with mmkd::Error.
/// The scheduler holds a reference: the optimiser must outlive it.
class PlateauScheduler {
 public:
  explicit PlateauScheduler(torch::optim::Optimizer& optimizer,
                            PlateauSchedulerOptions options = {});

  /// Feeds one epoch's metric (e.g. validation loss). Returns true when this step lowered the
  /// learning rate of at least one param group (false when the patience ran out but every group
  /// was already at min_lr, as PyTorch then changes nothing but still resets the counters).
  bool step(double metric);

  /// PyTorch's is_better(a, best) under the current options.
  bool is_better(double a, double best) const;

  bool in_cooldown() const { return state_.cooldown_counter > 0; }

  /// Learning rate of each param group now.
  std::vector<double> learning_rates() const;

  const PlateauSchedulerOptions& options() const { return options_; }
  const PlateauSchedulerState& state() const { return state_; }
  /// Restores counters saved with state(); the optimiser's lr is restored with the optimiser.
  void load_state(const PlateauSchedulerState& state) { state_ = state; }

 private:
  torch::optim::Optimizer& optimizer_;
  PlateauSchedulerOptions options_;
  PlateauSchedulerState state_;
};

/// The lr of one param group's options (Adam, AdamW, SGD, RMSprop, Adagrad); mmkd::Error
/// otherwise.
double get_group_lr(const torch::optim::OptimizerOptions& options);
/// Sets the lr of one param group's options (same optimisers as get_group_lr).
void set_group_lr(torch::optim::OptimizerOptions& options, double lr);

}  // namespace mmkd::train
