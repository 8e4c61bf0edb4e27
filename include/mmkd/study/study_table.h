// The study's table in the paper's layout: per section its teacher and students, accuracy and F1
// as mean ± std over seeds beside the paper's figures, parameters, latency, event mass, and the
// missing-modality rows. Read from the runs' metrics.json under one or more study directories.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mmkd/study/paired_difference.h"
#include "mmkd/study/study_config.h"
#include "mmkd/train/run_dir.h"

namespace mmkd::study {

/// One finished seed of a row (percent for accuracy and F1).
struct SeedResult {
  std::optional<double> acc7, f1, f1_macro;
  std::optional<double> teacher_lift, student_lift;
};

struct TableRow {
  std::string section;
  std::string name;  ///< row name (or "<teacher> without <drop>")
  std::string kind;  ///< teacher | student | missing-modality
  std::optional<PaperFigures> paper;
  std::vector<double> acc7, f1, f1_macro, majority;  ///< per finished seed (fractions)
  std::vector<double> parameters, latency_1, latency_64;
  std::vector<double> teacher_lift, student_lift;  ///< mean event-mass lift over pairs
  int64_t expected = 0;                            ///< seeds planned
  std::map<int64_t, SeedResult> by_seed;           ///< the same numbers, seed by seed
  std::vector<std::string> methods;                ///< KD methods of a distilled row's terms
  std::string baseline;                            ///< the lone row compared with; "" = none
  std::optional<PairedDifference> vs_baseline;     ///< acc7 (points) minus the baseline's
};

/// One distilled run beside its baseline of the same seed: what the scatter of teacher lift
/// against gain plots.
struct LiftGainPoint {
  std::string row;
  std::vector<std::string> methods;
  int64_t seed = 0;
  double teacher_lift = 0.0;  ///< event-mass lift of the teacher's distilled pairs
  double gain = 0.0;          ///< acc7 minus the baseline's, in points
};

/// The rows of `config` (extended grid included when it is on) from runs found under `roots`
/// (`<root>/runs/<row>-seed<k>`; the first root holding a run wins).
std::vector<TableRow> collect_table(const StudyConfig& config,
                                    const std::vector<std::string>& roots);

/// Every seed of every distilled row that has a baseline finished on that seed and a measured
/// teacher lift.
std::vector<LiftGainPoint> lift_gain_points(const std::vector<TableRow>& rows);

/// CSV of every finished run: row, kind, seed, scores, lifts, the baseline's acc7 and the gain.
std::string runs_csv(const std::vector<TableRow>& rows);

/// The table's column titles, and one row's cells as text (markdown and HTML share them).
const std::vector<std::string>& table_columns();
std::vector<std::string> table_cells(const TableRow& row);

/// Markdown: one table, section by section, with the commands' provenance left to the caller.
std::string table_markdown(const std::vector<TableRow>& rows);

/// CSV with mean and std in separate columns (percent for accuracy and F1).
std::string table_csv(const std::vector<TableRow>& rows);

/// The run called `run` in the first of `roots` that finished it (shards' directories are
/// searched in the order given), or nullopt.
std::optional<train::RunDir> find_run(const std::vector<std::string>& roots,
                                      const std::string& run);

}  // namespace mmkd::study
