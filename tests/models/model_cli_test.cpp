// `mmkd model summary` end to end (skipped when the CLI has not been built).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

namespace {

std::string run(const std::string& command, int* status) {
  std::string output;
  std::array<char, 4096> buffer{};
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return output;
  while (fgets(buffer.data(), buffer.size(), pipe) != nullptr) output += buffer.data();
  *status = pclose(pipe);
  return output;
}

TEST(ModelCli, SummaryPrintsCountsLengthsAndPaperFigures) {
  const std::string cli = MMKD_CLI_PATH;
  if (!std::ifstream(cli)) GTEST_SKIP() << "CLI not built: " << cli;
  const std::string configs = std::string(MMKD_FIXTURES_DIR) + "/../../configs/models/";
  int status = 0;
  auto out =
      run(cli + " model summary --config " + configs + "student_5.yaml --shape mosei", &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("675,655"), std::string::npos) << out;
  EXPECT_NE(out.find("0.675M"), std::string::npos) << out;
  EXPECT_NE(out.find("V<-L map"), std::string::npos) << out;
  EXPECT_NE(out.find("[1, 50, 500]"), std::string::npos) << out;
  out = run(cli + " model summary --config " + configs + "teacher_complete.yaml --shape tiny",
            &status);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("1.802M"), std::string::npos) << out;
  EXPECT_NE(out.find("No equal-width MulT configuration"), std::string::npos) << out;
  out = run(cli + " model summary --config " + configs + "teacher_complete.yaml --shape 1,2",
            &status);
  EXPECT_NE(status, 0);
  EXPECT_NE(out.find("Tv,Ta,Tl"), std::string::npos) << out;
}

}  // namespace
