// A study: the rows of the paper's Table 1 (or any table of teachers and students), the seeds they
// run with, and the overrides every run shares. Read from YAML (configs/table1.yaml).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace mmkd::study {

/// The paper's reported figures for a row (percent), shown beside ours.
struct PaperFigures {
  double acc7 = 0.0;
  double f1 = 0.0;
};

/// One network to train: a teacher, a student alone or a distilled student.
struct RowSpec {
  std::string name;                    ///< run group name; runs are <name>-seed<k>
  std::string config;                  ///< run config, absolute or relative to the study file
  std::vector<std::string> overrides;  ///< `--set` assignments for this row only
  std::optional<PaperFigures> paper;
  bool alone = false;  ///< in a section with a teacher: trained alone, not distilled from it
  /// The lone row this row's accuracy is compared with seed by seed ("" = the study's
  /// `baseline`, "none" = no comparison); students should name the one of their architecture.
  std::string baseline = "";
};

/// A block of the table: an optional teacher and the rows that learn from it (or stand alone).
struct SectionSpec {
  std::string title;
  std::optional<RowSpec> teacher;  ///< students of this section are distilled from it
  std::vector<RowSpec> rows;
};

/// Missing-modality evaluation: the teacher with inputs zeroed, beside a video-only student.
struct MissingModalitySpec {
  std::string teacher;            ///< a teacher row name
  std::string student;            ///< a row name shown for comparison
  std::vector<std::string> drop;  ///< e.g. "audio", "text", "audio,text"
};

/// The attention figure (paper Fig. 3) written with the report.
struct FigureSpec {
  std::string teacher, student, baseline;  ///< row names; baseline may be empty
  std::string pair = "V<-A";               ///< teacher transformer
  std::vector<int64_t> layers = {1, 2};    ///< 1-based
};

struct StudyConfig {
  std::string source;                  ///< the study file (for messages and relative paths)
  std::string resolved_yaml;           ///< the file with includes and overrides applied
  int64_t seeds = 3;                   ///< seeds 0..seeds-1
  std::vector<std::string> overrides;  ///< `--set` assignments for every run
  std::vector<SectionSpec> sections;
  bool extended = false;  ///< add every configuration x every method (study_plan.h)
  std::optional<MissingModalitySpec> missing_modality;
  std::optional<FigureSpec> figure;
  /// Default baseline of every distilled row (a row trained alone); "" = none.
  std::string baseline = "";

  /// A config path as given in the file, resolved against the study file's directory.
  std::string resolve(const std::string& path) const;
  /// The row `row` is compared with (its own `baseline`, else the study's), "" for none;
  /// teachers and lone rows are compared only when they name a baseline themselves.
  std::string baseline_of(const RowSpec& row, bool distilled) const;
};

/// Loads and validates `path` (with `include:`); `overrides` (`study.seeds=1`, ...) apply first.
/// Errors name the key and what was expected.
StudyConfig load_study_config(const std::string& path,
                              const std::vector<std::string>& overrides = {});

}  // namespace mmkd::study
