// From a study's table to the runs it needs: one job per row and seed, teachers before their
// students, grouped into units (a teacher with its students, or a row that stands alone) so that
// shards never wait on each other.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mmkd/study/study_config.h"

namespace mmkd::study {

/// "<group>-seed<k>": a run directory's name.
std::string run_name(const std::string& group, int64_t seed);

/// One training run of a study.
struct Job {
  std::string group;                   ///< row name
  int64_t seed = 0;                    ///< train.seed
  std::string config;                  ///< resolved run config path
  std::vector<std::string> overrides;  ///< study-wide, then the row's, then the seed
  std::string teacher;                 ///< teacher row name; empty for teachers and lone rows
  size_t unit = 0;                     ///< jobs of one unit run on the same shard

  std::string run_name() const { return study::run_name(group, seed); }
  /// The run name of its teacher (teacher non-empty).
  std::string teacher_run_name() const { return study::run_name(teacher, seed); }
};

/// `--shard i/n`: this machine runs units i-1, i-1+n, ... (1 <= i <= n).
struct Shard {
  int64_t index = 1;
  int64_t count = 1;
};

/// Parses "i/n"; errors name the option.
Shard parse_shard(const std::string& text);

/// Every job of `config` (including the extended grid when config.extended), seeds in order,
/// each teacher before its students, and each teacher once per seed.
std::vector<Job> plan_study(const StudyConfig& config);

/// The jobs of `jobs` whose unit belongs to `shard`.
std::vector<Job> select_shard(const std::vector<Job>& jobs, const Shard& shard);

/// The jobs of the rows named in `rows` and the teachers they learn from; errors name a row that
/// is not in the plan.
std::vector<Job> select_rows(const std::vector<Job>& jobs, const std::vector<std::string>& rows);

/// The sections the extended grid adds: every configuration (1..5) x every method, both EDAM
/// variants and directions, and the ideal-map control; teachers named teacher_<branch> and
/// configs taken from the study file's directory (teacher_<branch>.yaml, student_<c>.yaml).
std::vector<SectionSpec> extended_grid();

}  // namespace mmkd::study
