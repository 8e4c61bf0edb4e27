// `mmkd bench`: its JSON report and its refusals (timings are measured, never asserted).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../support/cli.h"

namespace mmkd {
namespace {

using testing::run_cli;
using testing::TempDir;

TEST(BenchCli, DistillationObjectiveIsTimedAndReported) {
  TempDir dir("bench_kd");
  const auto result = run_cli(
      "bench --model student:5 --shape tiny --batch 4 --threads 1 "
      "--kd edam --no-ceilings --repeats 1 --warmup 0 "
      "--inference-batches 1 --json " +
      (dir / "b.json"));
  ASSERT_EQ(result.status, 0) << result.output;
  std::ifstream in(dir / "b.json");
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["objective"], "edam-down");
  EXPECT_EQ(j["cost"]["parameters"], 693575);  // student (5) at the tiny shape, as model summary
  EXPECT_GT(j["train"]["step"]["median_ms"].get<double>(), 0.0);
}

TEST(BenchCli, RefusesDistillingIntoATeacherAndUnknownMethods) {
  auto result = run_cli("bench --model teacher:complete --shape tiny --kd edam --no-ceilings");
  EXPECT_NE(result.status, 0);
  EXPECT_NE(result.output.find("--kd edam: distillation trains a student"), std::string::npos)
      << result.output;
  result = run_cli("bench --model student:5 --shape tiny --kd edm --no-ceilings");
  EXPECT_NE(result.status, 0);
  EXPECT_NE(result.output.find("--kd"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("edam"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace mmkd
