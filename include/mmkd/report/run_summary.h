// Tables of finished runs: test accuracy, F1, parameters, latency and event mass, grouped over
// seeds as mean ± std (runs named <group>-seed<k>).
#pragma once

#include <string>
#include <vector>

#include "mmkd/train/run_metrics.h"

namespace mmkd::report {

/// One finished run: its directory and metrics.json.
struct RunResult {
  std::string dir;
  std::string group;  ///< directory name without its "-seed<k>" suffix
  train::RunMetrics metrics;
};

/// Reads `<dir>/metrics.json` of every run; errors name a directory without one.
std::vector<RunResult> read_runs(const std::vector<std::string>& dirs);

struct MeanStd {
  double mean = 0.0;
  double std = 0.0;  ///< sample standard deviation; 0 for a single value
};

/// Mean and sample standard deviation of non-empty `values`.
MeanStd mean_and_std(const std::vector<double>& values);

/// Mean and sample standard deviation ("0.4512 ± 0.0123"; "± 0" for a single run).
std::string mean_std(const std::vector<double>& values, int precision = 4);

/// A markdown table, one row per group (in first-seen order): runs, acc7, F1 (weighted), F1
/// (macro), majority rate, parameters, batch-1 latency, and the mean event-mass lift of teacher
/// and student maps where the runs recorded them.
std::string summary_table(const std::vector<RunResult>& runs);

}  // namespace mmkd::report
