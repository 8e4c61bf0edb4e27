// `mmkd model summary` end to end.
#include <gtest/gtest.h>

#include <string>

#include "../support/cli.h"

namespace {

using mmkd::testing::repo_path;
using mmkd::testing::run_cli;

TEST(ModelCli, SummaryPrintsCountsLengthsAndPaperFigures) {
  const std::string configs = repo_path("configs/models") + "/";
  auto out = run_cli("model summary --config " + configs + "student_5.yaml --shape mosei");
  EXPECT_EQ(out.status, 0) << out.output;
  EXPECT_NE(out.output.find("675,655"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("0.675M"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("V<-L map"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("[1, 50, 500]"), std::string::npos) << out.output;
  out = run_cli("model summary --config " + configs + "teacher_complete.yaml --shape tiny");
  EXPECT_EQ(out.status, 0) << out.output;
  EXPECT_NE(out.output.find("1.802M"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("No equal-width MulT configuration"), std::string::npos) << out.output;
  out = run_cli("model summary --config " + configs + "teacher_complete.yaml --shape 1,2");
  EXPECT_NE(out.status, 0);
  EXPECT_NE(out.output.find("Tv,Ta,Tl"), std::string::npos) << out.output;
}

// configs/student_5.yaml is only `include: [train/defaults.yaml, models/student_5.yaml]`: the
// summary must resolve it as `mmkd train` does and describe the same network.
TEST(ModelCli, SummaryResolvesIncludesLikeTheOtherCommands) {
  auto composed = run_cli("model summary --config " + repo_path("configs/student_5.yaml"));
  ASSERT_EQ(composed.status, 0) << composed.output;
  EXPECT_NE(composed.output.find("Model: student 5"), std::string::npos) << composed.output;
  auto direct = run_cli("model summary --config " + repo_path("configs/models/student_5.yaml"));
  ASSERT_EQ(direct.status, 0) << direct.output;
  // Everything after the "Config: <file>" line (shape, per-module counts) must be the same.
  const auto after_config = [](const std::string& text) {
    return text.find("Input shape") == std::string::npos ? text
                                                         : text.substr(text.find("Input shape"));
  };
  EXPECT_EQ(after_config(composed.output), after_config(direct.output));
}

}  // namespace
