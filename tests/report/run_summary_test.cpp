#include "mmkd/report/run_summary.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../support/cli.h"
#include "mmkd/core/error.h"

namespace mmkd::report {
namespace {

using mmkd::testing::TempDir;

void write_run(const std::string& dir, double acc, double f1, double lift) {
  std::filesystem::create_directories(dir);
  train::RunMetrics m;
  m.test["classification"] = {{"accuracy", acc}, {"f1_weighted", f1}, {"f1_macro", 0.2}};
  m.majority_rate = 0.31;
  m.parameters = 1000;
  m.latency["batch_1"]["median_ms"] = 2.0;
  m.extra["event_mass"]["student"]["V<-A"] = {{"lift", lift}};
  m.extra["event_mass"]["student"]["V<-L"] = {{"lift", lift + 0.2}};
  m.write(train::RunDir{dir});
}

TEST(RunSummary, MeanAndSampleStdOverSeeds) {
  EXPECT_EQ(mean_std({0.4, 0.5, 0.6}), "0.5000 ± 0.1000");  // std of 0.4,0.5,0.6 (n-1) = 0.1
  EXPECT_EQ(mean_std({0.25}), "0.2500 ± 0.0000");
  EXPECT_EQ(mean_std({}), "–");
}

TEST(RunSummary, GroupsRunsBySeedSuffix) {
  TempDir dir("summary");
  write_run(dir / "student-seed0", 0.40, 0.30, 1.0);
  write_run(dir / "student-seed1", 0.50, 0.40, 2.0);
  write_run(dir / "teacher-seed0", 0.60, 0.55, 3.0);
  const auto runs =
      read_runs({dir / "student-seed0", dir / "student-seed1", dir / "teacher-seed0"});
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[1].group, "student");
  const std::string table = summary_table(runs);
  // acc 0.40, 0.50 -> mean 0.45, std sqrt(0.005) = 0.0707; lift means 1.1 and 2.1 -> 1.60 ± 0.71
  EXPECT_NE(table.find("| student | 2 | 0.4500 ± 0.0707 | 0.3500 ± 0.0707 |"), std::string::npos)
      << table;
  EXPECT_NE(table.find("1.60 ± 0.71 |"), std::string::npos) << table;
  EXPECT_NE(table.find("| teacher | 1 | 0.6000 ± 0.0000 |"), std::string::npos) << table;
  EXPECT_THROW(read_runs({dir / "missing"}), Error);
}

}  // namespace
}  // namespace mmkd::report
