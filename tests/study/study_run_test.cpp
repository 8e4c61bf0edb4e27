// `mmkd study` end to end on the tiny preset: skipping finished work, resuming a killed study,
// shards merging to the same table as one run.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "../support/cli.h"
#include "mmkd/core/error.h"
#include "mmkd/study/job_runner.h"
#include "mmkd/study/study_run.h"

namespace mmkd {
namespace {

namespace fs = std::filesystem;
using testing::repo_path;
using testing::run_cli;
using testing::TempDir;

/// Two rows (student alone; a teacher and its EDAM student) on tiny data, one seed.
std::string tiny_study(const TempDir& dir, int64_t teacher_epochs = 2) {
  const std::string path = dir / "study.yaml";
  std::ofstream(path) << "study:\n  seeds: 1\n"
                      << "  set: [train.epochs=2, data.preset=tiny, train.progress=false]\n"
                      << "  sections:\n"
                      << "    - title: alone\n      rows: [{name: alone, config: "
                      << repo_path("configs/student_5.yaml") << "}]\n"
                      << "    - title: five\n      teacher: {name: teacher, config: "
                      << repo_path("configs/teacher_complete.yaml")
                      << ", set: [train.epochs=" << teacher_epochs << "]}\n"
                      << "      rows: [{name: edam, config: "
                      << repo_path("configs/table1/c5_edam_down.yaml") << "}]\n"
                      << "  missing_modality: {teacher: teacher, student: alone, drop: [audio]}\n"
                      << "  figure: {teacher: teacher, student: edam, baseline: alone}\n";
  return path;
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The CSV without its measured (timing) columns, which differ between runs.
std::string results_only(const std::string& csv) {
  std::stringstream in(csv), out;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::stringstream l(line);
    std::string f;
    while (std::getline(l, f, ',')) fields.push_back(f);
    for (size_t i = 0; i < fields.size(); ++i)
      if (i != 13 && i != 14) out << fields[i] << ",";  // latency b1, b64
    out << "\n";
  }
  return out.str();
}

TEST(StudyRun, EachStudyFileKeepsItsOwnResolvedCopy) {
  // Table 1 and the findings share runs/table1; neither may overwrite the other's record.
  study::StudyConfig table1, findings, unnamed;
  table1.source = "configs/table1.yaml";
  findings.source = "configs/findings/teacher_maps.yaml";
  EXPECT_EQ(study::resolved_study_file(table1), "table1.resolved.yaml");
  EXPECT_EQ(study::resolved_study_file(findings), "teacher_maps.resolved.yaml");
  EXPECT_EQ(study::resolved_study_file(unnamed), "study.resolved.yaml");
}

TEST(StudyRun, SecondRunSkipsFinishedWork) {
  TempDir dir("study_skip");
  const std::string study = tiny_study(dir);
  const std::string out = dir / "out";
  const auto first = run_cli("study --config " + study + " --out " + out + " --threads 1");
  ASSERT_EQ(first.status, 0) << first.output;
  for (const char* file : {"table1.md", "table1.csv", "report.html", "attention.png",
                           "study.resolved.yaml", "runs/teacher-seed0/missing-audio.json"})
    EXPECT_TRUE(fs::exists(out + "/" + file)) << file;
  const auto stamp = fs::last_write_time(out + "/runs/edam-seed0/metrics.json");
  const auto second = run_cli("study --config " + study + " --out " + out + " --threads 1");
  ASSERT_EQ(second.status, 0) << second.output;
  EXPECT_NE(second.output.find("alone-seed0: finished before, skipped"), std::string::npos)
      << second.output;
  EXPECT_EQ(second.output.find("started"), std::string::npos) << second.output;
  EXPECT_EQ(fs::last_write_time(out + "/runs/edam-seed0/metrics.json"), stamp);
  EXPECT_EQ(read(out + "/table1.csv").substr(0, 40), read(out + "/table1.csv").substr(0, 40));
  // The report names the paper's columns and the missing-modality row.
  const std::string md = read(out + "/table1.md");
  EXPECT_NE(md.find("teacher without audio"), std::string::npos) << md;
  EXPECT_NE(md.find("| edam | student | 1/1 |"), std::string::npos) << md;
  // Every row of this study has event mass: the teacher's own, the lone student's own, and the
  // distilled student's pair (teacher and student), so no lift cell is empty.
  const size_t body = md.find("| **alone**");
  ASSERT_NE(body, std::string::npos) << md;
  const std::string rows = md.substr(body, md.find("**Missing") - body);
  EXPECT_EQ(rows.find("| – | – |"), std::string::npos) << rows;
}

TEST(StudyRun, KilledStudyResumes) {
  TempDir dir("study_kill");
  const std::string study = tiny_study(dir, 20);
  const std::string out = dir / "out";
  const std::string pid_file = dir / "pid";
  testing::run_command(std::string(MMKD_CLI_PATH) + " study --config " + study + " --out " + out +
                       " --threads 1 > " + (dir / "first.log") + " 2>&1 & echo $! > " + pid_file);
  const std::string teacher_last = out + "/runs/teacher-seed0/last.pt";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (!fs::exists(teacher_last) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(teacher_last)) << read(dir / "first.log");
  ::kill(std::stoi(read(pid_file)), SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_FALSE(fs::exists(out + "/runs/teacher-seed0/metrics.json"))
      << "the teacher finished before the kill; nothing was interrupted";
  const auto resumed = run_cli("study --config " + study + " --out " + out + " --threads 1");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("alone-seed0: finished before, skipped"), std::string::npos)
      << resumed.output;
  EXPECT_NE(resumed.output.find("teacher-seed0: resumed"), std::string::npos) << resumed.output;
  EXPECT_TRUE(fs::exists(out + "/runs/edam-seed0/metrics.json"));
  const std::string log = read(out + "/runs/teacher-seed0/log.csv");
  EXPECT_NE(log.find("\n20,"), std::string::npos) << log;
}

TEST(StudyRun, ShardsMergeToTheSameTableAsOneRun) {
  TempDir dir("study_shards");
  const std::string study = tiny_study(dir);
  const std::string whole = dir / "whole", a = dir / "a", b = dir / "b", merged = dir / "merged";
  ASSERT_EQ(run_cli("study --config " + study + " --out " + whole + " --threads 1").status, 0);
  const auto first =
      run_cli("study --config " + study + " --out " + a + " --shard 1/2 --threads 1");
  ASSERT_EQ(first.status, 0) << first.output;
  const auto second =
      run_cli("study --config " + study + " --out " + b + " --shard 2/2 --threads 1");
  ASSERT_EQ(second.status, 0) << second.output;
  EXPECT_FALSE(fs::exists(a + "/runs/teacher-seed0"));  // the units went to different shards
  EXPECT_FALSE(fs::exists(b + "/runs/alone-seed0"));
  // As if the shards' studies were killed before measuring: the merge measures for them.
  const std::string teacher_mass = b + "/runs/teacher-seed0/event-mass.json";
  const std::string teacher_without_audio = b + "/runs/teacher-seed0/missing-audio.json";
  ASSERT_TRUE(fs::remove(teacher_mass));
  ASSERT_TRUE(fs::remove(teacher_without_audio));
  const auto merge =
      run_cli("study merge --config " + study + " --out " + merged + " " + a + " " + b);
  ASSERT_EQ(merge.status, 0) << merge.output;
  EXPECT_EQ(results_only(read(merged + "/table1.csv")), results_only(read(whole + "/table1.csv")));
  EXPECT_TRUE(fs::exists(merged + "/attention.png"));
  EXPECT_TRUE(fs::exists(teacher_mass));
  EXPECT_TRUE(fs::exists(teacher_without_audio));
}

TEST(StudyRun, DryRunListsCommandsAndRunsNothing) {
  TempDir dir("study_dry");
  const auto result = run_cli("study --config " + repo_path("configs/table1.yaml") + " --out " +
                              (dir / "out") + " --dry-run --seeds 1");
  ASSERT_EQ(result.status, 0) << result.output;
  EXPECT_NE(result.output.find("distill --config"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("--teacher " + (dir / "out") + "/runs/teacher_complete-seed0"),
            std::string::npos)
      << result.output;
  EXPECT_FALSE(fs::exists(dir / "out/runs"));
}

TEST(StudyRun, RunsStartOnlyFromAProcessWithoutExtraThreads) {
  // fork() copies only the calling thread: with another thread alive (as LibTorch's OpenMP pool
  // stays once used) a child's first parallel region would hang, so the runner refuses instead.
  TempDir dir("study_threads");
  study::Job job;
  job.group = "alone";
  job.config = repo_path("configs/student_5.yaml");
  std::promise<void> stop;
  std::thread other([done = stop.get_future()]() mutable { done.wait(); });
  try {
    study::run_jobs({job}, dir / "out", study::RunnerOptions{});
    ADD_FAILURE() << "run_jobs forked from a multi-threaded process";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("need a parent without LibTorch's thread pool"),
              std::string::npos)
        << e.what();
  }
  stop.set_value();
  other.join();
  EXPECT_FALSE(fs::exists(dir / "out/runs/alone-seed0/config.yaml"));
}

TEST(StudyRun, FailedTeacherStopsItsStudentsAndTheStudyReportsIt) {
  TempDir dir("study_fail");
  const std::string study = tiny_study(dir);
  const auto result = run_cli("study --config " + study + " --out " + (dir / "out") +
                              " --run-set train.lr=-1 --threads 1");
  EXPECT_NE(result.status, 0);
  EXPECT_NE(result.output.find("edam-seed0: not run: its teacher teacher-seed0 did not finish"),
            std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("run(s) of the study did not finish"), std::string::npos)
      << result.output;
}

}  // namespace
}  // namespace mmkd
