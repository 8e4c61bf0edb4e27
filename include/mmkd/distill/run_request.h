// The one way to start or continue a run, a network trained alone or distilled from a teacher:
// `mmkd train`, `mmkd distill` and every job of a study go through execute_run.
#pragma once

#include <string>
#include <vector>

#include "mmkd/train/run_dir.h"
#include "mmkd/train/run_metrics.h"

namespace mmkd::distill {

struct RunRequest {
  bool distill = false;                ///< distill from a teacher (else train alone, L_c only)
  std::string config;                  ///< YAML file of a new run (unused when resuming)
  std::vector<std::string> overrides;  ///< key=value, applied after the file (--set)
  std::string run_dir;                 ///< empty: runs/<config stem>-seed<seed>
  bool resume = false;                 ///< continue run_dir from its config.yaml and last.pt
  std::string teacher;                 ///< distill: teacher run or checkpoint (distill.teacher)
  int64_t threads = -1;                ///< intra-op threads (train.threads); -1 = the config's
  std::string device;                  ///< train.device; empty = the config's
};

/// The equivalent command line ("mmkd distill --config ... --run ..."), for logs and dry runs.
std::string command_line(const RunRequest& request);

struct RunOutcome {
  train::RunDir dir;
  train::RunMetrics metrics;
};

/// Resolves the request's configuration (checking a new run does not overwrite an existing
/// one and a resumed one exists), trains and evaluates; metrics.json is written at the end.
RunOutcome execute_run(RunRequest request);

}  // namespace mmkd::distill
