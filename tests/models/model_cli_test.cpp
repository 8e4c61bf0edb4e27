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

}  // namespace
