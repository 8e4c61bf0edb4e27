// `mmkd latency`: measuring a finished run again, keeping it, and refusing what is not a run.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../support/cli.h"

namespace mmkd::testing {
namespace {

TEST(LatencyCli, MeasuresAFinishedRunAndWritesLatencyJsonOnlyWhenAsked) {
  TempDir dir("latency_cli");
  const std::string run = dir / "student";
  auto trained = run_cli("train --config " + repo_path("configs/student_5.yaml") +
                         " --set data.preset=tiny --set model.d_model=8 --set model.layers=1"
                         " --set model.heads=2 --set train.epochs=1 --set train.threads=1"
                         " --set train.progress=false --run " +
                         run);
  ASSERT_EQ(trained.status, 0) << trained.output;

  auto measured = run_cli("latency " + run);
  ASSERT_EQ(measured.status, 0) << measured.output;
  EXPECT_NE(measured.output.find(run + ": batch 1 "), std::string::npos) << measured.output;
  EXPECT_NE(measured.output.find("(when trained: "), std::string::npos) << measured.output;
  EXPECT_FALSE(std::filesystem::exists(run + "/latency.json"));

  measured = run_cli("latency " + run + " --threads 1 --write");
  ASSERT_EQ(measured.status, 0) << measured.output;
  std::ifstream in(run + "/latency.json");
  ASSERT_TRUE(in) << measured.output;
  const auto record = nlohmann::json::parse(in);
  EXPECT_EQ(record["threads"], 1);
  EXPECT_EQ(record["device"], "cpu");
  EXPECT_EQ(record["batch_1"]["batch_size"], 1);
  EXPECT_EQ(record["batch_64"]["batch_size"], 64);
  EXPECT_GT(record["batch_1"]["median_ms"].get<double>(), 0.0);
  EXPECT_LE(record["batch_1"]["p10_ms"].get<double>(), record["batch_1"]["p90_ms"].get<double>());

  // Every run is checked before any is timed; the error names the directory.
  const auto refused = run_cli("latency " + run + " " + (dir / "nope"));
  EXPECT_NE(refused.status, 0);
  EXPECT_NE(refused.output.find("run '" + (dir / "nope") + "' has no best.pt"), std::string::npos)
      << refused.output;
  EXPECT_EQ(refused.output.find(run + ": batch 1"), std::string::npos) << refused.output;
}

}  // namespace
}  // namespace mmkd::testing
