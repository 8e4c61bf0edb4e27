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

// --kd-set reaches the term's options (a wrong one is refused by the term's own check) and
// --kd-samples sizes CRD's banks; a batch larger than the training set is refused.
TEST(BenchCli, DistillationOptionsAndTrainingSetSize) {
  const std::string base =
      "bench --model student:5 --shape tiny --batch 4 --threads 1 --kd crd_final --no-ceilings "
      "--repeats 1 --warmup 0 --no-inference ";
  auto result = run_cli(base + "--kd-samples 300 --kd-set crd.fused_scores=false");
  EXPECT_EQ(result.status, 0) << result.output;
  result = run_cli(base + "--kd-set crd.fused_scorez=false");
  EXPECT_NE(result.status, 0);
  EXPECT_NE(result.output.find("unknown config key 'distill.crd.fused_scorez'"), std::string::npos)
      << result.output;
  result = run_cli(base + "--kd-set fused_scores");
  EXPECT_NE(result.status, 0);
  EXPECT_NE(result.output.find("--kd-set 'fused_scores': expected KEY=VALUE"), std::string::npos)
      << result.output;
  result = run_cli(base + "--kd-samples 3");
  EXPECT_NE(result.status, 0);
  EXPECT_NE(result.output.find("--kd-samples 3 must be at least the batch (4)"), std::string::npos)
      << result.output;
}

}  // namespace
}  // namespace mmkd
