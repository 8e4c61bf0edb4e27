// The files of one run directory. This is the only code that spells their names: training,
// distillation, studies, reports and the CLI all reach a run's files through a RunDir.
#pragma once

#include <string>

namespace mmkd::train {

struct RunDir {
  std::string path;

  std::string config() const;      ///< config.yaml: the resolved configuration of the run
  std::string log() const;         ///< log.csv: one row per finished epoch
  std::string metrics() const;     ///< metrics.json: written once, when the run has finished
  std::string best() const;        ///< best.pt: the weights of the best validation epoch
  std::string last() const;        ///< last.pt: weights and optimizer state to resume from
  std::string latency() const;     ///< latency.json: `mmkd latency --write`, preferred by tables
  std::string event_mass() const;  ///< event-mass.json: a lone network's own maps (study)
  /// missing-<drop>.json: a teacher evaluated with the `drop` modalities zeroed ("audio,text").
  std::string missing_modality(const std::string& drop) const;

  /// A run is finished exactly when its metrics.json exists.
  bool finished() const;
  /// Unfinished, with a checkpoint to continue from.
  bool resumable() const;
};

/// The checkpoint `run_or_checkpoint` names: a run directory means its best.pt, anything else a
/// checkpoint file. Either must exist; the error opens with `what` ("--checkpoint", "teacher").
std::string checkpoint_of(const std::string& run_or_checkpoint, const std::string& what);

/// `<root>/runs/<name>`: where a study keeps the run called `name`.
RunDir study_run_dir(const std::string& root, const std::string& name);

}  // namespace mmkd::train
