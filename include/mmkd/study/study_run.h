// `mmkd study`: plan, run (resumable, sharded, several runs at a time), evaluate the teachers with
// modalities missing, and write the report (table1.md/.csv, figures, report.html).
#pragma once

#include <string>
#include <vector>

#include "mmkd/study/job_runner.h"
#include "mmkd/study/study_config.h"
#include "mmkd/study/study_plan.h"

namespace mmkd::study {

struct StudyOptions {
  std::string out = "runs/study";  ///< runs/, logs/ and the report go here
  std::string report_dir;          ///< default: `out`
  Shard shard;
  std::vector<std::string> only;  ///< run only these rows (and their teachers); empty = all
  RunnerOptions runner;
  bool dry_run = false;  ///< print the plan and what each run would do, run nothing
};

/// Where run_study keeps the study file as resolved, inside the study directory:
/// "<study file's stem>.resolved.yaml" (table1.yaml -> table1.resolved.yaml), so that two study
/// files sharing one directory do not overwrite each other's.
std::string resolved_study_file(const StudyConfig& config);

/// Runs this shard's part of the study; returns the number of runs that did not finish.
int64_t run_study(const StudyConfig& config, const StudyOptions& options);

/// Evaluates each finished seed of the missing-modality teacher under `out_dir` with the
/// configured inputs zeroed (cached beside its metrics.json).
void evaluate_missing_modalities(const StudyConfig& config, const std::string& out_dir);

/// For every finished teacher and lone student under `out_dir` whose data marks events: the
/// event mass of its own maps on test (a teacher's every cross-modal transformer, a student's
/// pairs of its configuration), cached as `<run>/event-mass.json` (distilled
/// students record theirs and their teacher's in metrics.json).
void evaluate_event_masses(const StudyConfig& config, const std::string& out_dir);

/// table1.md, table1.csv, attention.png, confusion PNGs and report.html in `report_dir`, from the
/// runs under `roots` (one study directory, or several shards' to merge). Returns the markdown.
std::string write_study_report(const StudyConfig& config, const std::vector<std::string>& roots,
                               const std::string& report_dir);

}  // namespace mmkd::study
