// metrics.json as a type: what a finished run records, written once by finish_run and read by
// studies, reports and the CLI. Only run_metrics.cpp knows the JSON layout; readers use the
// typed fields and views below.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "mmkd/train/run_dir.h"

namespace mmkd::train {

struct RunMetrics {
  std::string model;  ///< ModelConfig::describe()
  std::string data;   ///< DataConfig::describe()
  int64_t best_epoch = 0;
  int64_t epochs = 0;
  double best_val_loss = 0;
  nlohmann::json test;       ///< evaluate()'s record on the test split (EvalResult::to_json)
  double majority_rate = 0;  ///< share of the test split's most frequent class
  int64_t parameters = 0;
  int64_t projection_parameters = 0;
  nlohmann::json latency;  ///< latency_record()
  /// Sections an objective adds (distillation: "distill", "event_mass"), kept as written.
  nlohmann::json extra = nlohmann::json::object();

  /// Test scores (fractions) by name: accuracy (acc7), f1_weighted, f1_macro.
  std::optional<double> test_score(const std::string& name) const;
  /// The test confusion matrix, rows true class.
  std::optional<std::vector<std::vector<double>>> confusion() const;
  /// Median latency in ms at batch 1 or 64 as recorded at the end of training.
  std::optional<double> latency_ms(int64_t batch) const;
  /// Mean event-mass lift over the distilled pairs of "teacher" or "student" (distillation runs).
  std::optional<double> mean_lift(const std::string& network) const;
  /// The registered KD methods of a distillation run's terms, in order; empty for other runs.
  std::vector<std::string> kd_methods() const;

  nlohmann::json to_json() const;
  /// Parses a metrics.json document; `source` names it in errors.
  static RunMetrics from_json(const nlohmann::json& j, const std::string& source);

  /// The run's metrics, or nullopt when it has not finished; an error naming the file when it is
  /// not a metrics.json.
  static std::optional<RunMetrics> read(const RunDir& dir);
  /// As read(), but a run that has not finished is an error naming the directory.
  static RunMetrics load(const RunDir& dir);
  /// Writes metrics.json atomically: the run is finished from this moment.
  void write(const RunDir& dir) const;
};

/// Score `name` (accuracy, f1_weighted, f1_macro) of an evaluation record (EvalResult::to_json,
/// as in metrics.json's test or a missing-modality file).
std::optional<double> eval_score(const nlohmann::json& eval, const std::string& name);
/// Median ms at `batch` of a latency record (latency_record(), latency.json).
std::optional<double> latency_median_ms(const nlohmann::json& record, int64_t batch);
/// Mean lift over the transformers of one network's event-mass record (diagnostics' to_json).
std::optional<double> mean_event_mass_lift(const nlohmann::json& record);

/// A lone network's own event mass (event-mass.json): the record, or nullopt when not measured.
std::optional<nlohmann::json> read_event_mass_file(const RunDir& dir);
void write_event_mass_file(const RunDir& dir, const nlohmann::json& record);

}  // namespace mmkd::train
