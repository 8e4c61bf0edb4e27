#include "mmkd/study/study_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "../support/cli.h"
#include "mmkd/core/error.h"
#include "mmkd/distill/kd_term.h"
#include "mmkd/study/study_plan.h"

namespace mmkd::study {
namespace {

using testing::repo_path;
using testing::TempDir;

std::string write_study(const TempDir& dir, const std::string& text) {
  const std::string path = dir / "study.yaml";
  std::ofstream(path) << text;
  return path;
}

std::string study_error_of(const std::string& path) {
  try {
    load_study_config(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(StudyConfig, Table1HasEveryRowOfThePaperWithItsFigures) {
  const StudyConfig config = load_study_config(repo_path("configs/table1.yaml"));
  int paper_rows = 0;
  for (const auto& section : config.sections) {
    if (section.teacher && section.teacher->paper) ++paper_rows;
    for (const auto& row : section.rows) paper_rows += row.paper.has_value();
  }
  // Student alone, 5 teacher rows (complete listed twice), 14 student rows.
  EXPECT_EQ(paper_rows, 1 + 5 + 14);
  EXPECT_EQ(config.seeds, 3);
  ASSERT_TRUE(config.missing_modality);
  EXPECT_EQ(config.missing_modality->teacher, "teacher_complete");
}

TEST(StudyConfig, RefusesUnknownKeysWithTheClosestOne) {
  TempDir dir("study_config_keys");
  const std::string e = study_error_of(write_study(dir, "study:\n  seed: 2\n  sections: []\n"));
  EXPECT_NE(e.find("seed"), std::string::npos) << e;
  EXPECT_NE(e.find("seeds"), std::string::npos) << e;
}

TEST(StudyConfig, NamesAMissingRunConfig) {
  TempDir dir("study_config_missing");
  const std::string e = study_error_of(write_study(
      dir, "study:\n  sections:\n    - {title: t, rows: [{name: a, config: nope.yaml}]}\n"));
  EXPECT_NE(e.find("row 'a'"), std::string::npos) << e;
  EXPECT_NE(e.find("nope.yaml"), std::string::npos) << e;
}

TEST(StudyConfig, RefusesDuplicateNamesAndUnknownReferences) {
  TempDir dir("study_config_names");
  const std::string student = repo_path("configs/student_5.yaml");
  std::string e = study_error_of(
      write_study(dir, "study:\n  sections:\n    - {title: t, rows: [{name: a, config: " + student +
                           "}, {name: a, config: " + student + "}]}\n"));
  EXPECT_NE(e.find("'a' is used twice"), std::string::npos) << e;
  e = study_error_of(
      write_study(dir, "study:\n  sections:\n    - {title: t, rows: [{name: a, config: " + student +
                           "}]}\n  figure: {teacher: b, student: a}\n"));
  EXPECT_NE(e.find("study.figure.teacher names 'b'"), std::string::npos) << e;
}

TEST(StudyConfig, ARowUnderATeacherMustBeDistilledOrMarkedAlone) {
  TempDir dir("study_config_alone");
  const std::string teacher = repo_path("configs/teacher_complete.yaml");
  const std::string student = repo_path("configs/student_5.yaml");
  const std::string edam = repo_path("configs/table1/c5_edam_down.yaml");
  const auto study = [&](const std::string& rows) {
    return write_study(dir, "study:\n  sections:\n    - {title: t, teacher: {name: t, config: " +
                                teacher + "}, rows: [" + rows + "]}\n");
  };
  // A student config without distill: under a teacher would silently get default distillation.
  std::string e = study_error_of(study("{name: s, config: " + student + "}"));
  EXPECT_NE(e.find("row 's' is listed under teacher 't' but"), std::string::npos) << e;
  EXPECT_NE(e.find("alone: true"), std::string::npos) << e;
  const StudyConfig ok = load_study_config(
      study("{name: s, config: " + student + ", alone: true}, {name: d, config: " + edam + "}"));
  const auto jobs = plan_study(ok);
  ASSERT_EQ(jobs.size(), 3u * 3u);  // default 3 seeds x (teacher, alone, distilled)
  EXPECT_EQ(jobs[1].group, "s");
  EXPECT_EQ(jobs[1].teacher, "");  // trained alone, in the teacher's unit
  EXPECT_EQ(jobs[1].unit, jobs[0].unit);
  EXPECT_EQ(jobs[2].teacher, "t");
  // And a distillation config with no teacher to learn from.
  e = study_error_of(write_study(
      dir, "study:\n  sections:\n    - {title: t, rows: [{name: d, config: " + edam + "}]}\n"));
  EXPECT_NE(e.find("has a distill: section but the row has no teacher"), std::string::npos) << e;
}

TEST(StudyConfig, ABaselineIsALoneRowOfTheStudy) {
  TempDir dir("study_config_baseline");
  const std::string teacher = repo_path("configs/teacher_complete.yaml");
  const std::string student = repo_path("configs/student_5.yaml");
  const std::string edam = repo_path("configs/table1/c5_edam_down.yaml");
  const auto study = [&](const std::string& baseline, const std::string& row_baseline) {
    return write_study(dir,
                       "study:\n  baseline: " + baseline +
                           "\n  sections:\n    - {title: a, rows: [{name: s, config: " + student +
                           "}]}\n    - {title: t, teacher: {name: t, config: " + teacher +
                           "}, rows: [{name: d, config: " + edam + row_baseline + "}]}\n");
  };
  const StudyConfig ok = load_study_config(study("s", ""));
  EXPECT_EQ(ok.baseline, "s");
  EXPECT_EQ(ok.baseline_of(ok.sections[1].rows[0], true), "s");
  EXPECT_EQ(ok.baseline_of(*ok.sections[1].teacher, false), "");
  const StudyConfig off = load_study_config(study("s", ", baseline: none"));
  EXPECT_EQ(off.baseline_of(off.sections[1].rows[0], true), "");
  std::string e = study_error_of(study("x", ""));
  EXPECT_NE(e.find("study.baseline names 'x', which is not a row of the study"), std::string::npos)
      << e;
  e = study_error_of(study("t", ""));
  EXPECT_NE(e.find("study.baseline names 't', which is not trained alone"), std::string::npos) << e;
  e = study_error_of(study("s", ", baseline: d"));
  EXPECT_NE(e.find("the baseline of row 'd' names 'd', which is not trained alone"),
            std::string::npos)
      << e;
}

TEST(StudyPlan, TeachersRunOncePerSeedBeforeTheirStudents) {
  StudyConfig config = load_study_config(repo_path("configs/table1.yaml"));
  const auto jobs = plan_study(config);
  // Per seed: 2 alone + 4 teachers + 15 students + (mean: teacher + 3 rows) = 25.
  ASSERT_EQ(jobs.size(), 3u * 25u);
  int complete_teachers = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (jobs[i].group == "teacher_complete") ++complete_teachers;
    if (jobs[i].teacher.empty()) continue;
    bool teacher_before = false;
    for (size_t j = 0; j < i; ++j)
      teacher_before |= jobs[j].group == jobs[i].teacher && jobs[j].seed == jobs[i].seed &&
                        jobs[j].unit == jobs[i].unit;
    EXPECT_TRUE(teacher_before) << jobs[i].run_name();
  }
  EXPECT_EQ(complete_teachers, 3);
  EXPECT_EQ(jobs.back().overrides.back(), "train.seed=2");
}

TEST(StudyPlan, ShardsPartitionTheJobsByUnit) {
  StudyConfig config = load_study_config(repo_path("configs/table1.yaml"));
  const auto jobs = plan_study(config);
  const auto a = select_shard(jobs, parse_shard("1/2"));
  const auto b = select_shard(jobs, parse_shard("2/2"));
  EXPECT_EQ(a.size() + b.size(), jobs.size());
  for (const auto& job : a) {
    for (const auto& other : b) EXPECT_NE(job.unit, other.unit);
    if (!job.teacher.empty()) {
      bool has_teacher = false;
      for (const auto& t : a) has_teacher |= t.group == job.teacher && t.seed == job.seed;
      EXPECT_TRUE(has_teacher) << job.run_name();
    }
  }
  EXPECT_THROW(parse_shard("3/2"), Error);
  EXPECT_THROW(parse_shard("1-2"), Error);
}

TEST(StudyPlan, OnlyRunsTheNamedRowsAndTheirTeachers) {
  const StudyConfig config = load_study_config(repo_path("configs/table1.yaml"));
  const auto jobs = select_rows(plan_study(config), {"student5_alone", "c5_edam_down"});
  ASSERT_EQ(jobs.size(), 3u * 3u);  // per seed: the lone student, the teacher, its student
  for (const auto& job : jobs)
    EXPECT_TRUE(job.group == "student5_alone" || job.group == "c5_edam_down" ||
                job.group == "teacher_complete")
        << job.group;
  try {
    select_rows(plan_study(config), {"c5_edam_dwn"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'c5_edam_down'"), std::string::npos)
        << e.what();
  }
}

TEST(StudyPlan, ExtendedGridCoversEveryConfigurationAndMethod) {
  StudyConfig config = load_study_config(repo_path("configs/table1.yaml"), {"study.seeds=1"});
  const auto base = plan_study(config).size();
  config.extended = true;
  const auto extended = plan_study(config);
  // 5 configurations x every registered method's rows (the three branch teachers are shared by
  // name): 4 CRD levels, 4 EDAM variants, and one row each for the other 5 methods.
  size_t rows_per_configuration = 0;
  for (const auto& info : distill::kd_terms().methods())
    rows_per_configuration += std::max<size_t>(1, info.study_rows.size());
  EXPECT_EQ(rows_per_configuration, 13u);
  EXPECT_EQ(extended.size(), base + 5 * rows_per_configuration);
  std::set<std::string> names;
  for (const auto& section : extended_grid())
    for (const auto& row : section.rows) {
      EXPECT_TRUE(std::filesystem::exists(config.resolve(row.config))) << row.config;
      names.insert(row.name);
    }
  for (const char* name : {"x1_crd_final", "x3_edam_up_s_log_t", "x5_ideal_map", "x5_minilm",
                           "x2_tinybert", "x4_logit_kd", "x5_fitnet"})
    EXPECT_TRUE(names.count(name)) << name;
}

}  // namespace
}  // namespace mmkd::study
