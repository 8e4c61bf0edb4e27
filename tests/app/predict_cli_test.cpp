// `mmkd predict` and `mmkd eval` end to end on a tiny student.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>

#include "../support/cli.h"

namespace mmkd::testing {
namespace {

const char* kTinyStudent =
    " --set data.preset=tiny --set model.d_model=8 --set model.layers=1 --set model.heads=2"
    " --set train.epochs=1 --set train.threads=1 --set train.progress=false";

class PredictCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("predict");
    auto trained = run_cli("train --config " + repo_path("configs/student_5.yaml") + kTinyStudent +
                           " --run " + (*dir_ / "student"));
    ASSERT_EQ(trained.status, 0) << trained.output;
    auto teacher = run_cli("train --config " + repo_path("configs/teacher_video.yaml") +
                           kTinyStudent + " --run " + (*dir_ / "teacher"));
    ASSERT_EQ(teacher.status, 0) << teacher.output;
  }
  static void TearDownTestSuite() { delete dir_; }
  static TempDir* dir_;
};
TempDir* PredictCli::dir_ = nullptr;

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty() && line[0] == '{') lines.push_back(nlohmann::json::parse(line));
  return lines;
}

TEST_F(PredictCli, PicklesGiveOneJsonLinePerSampleWithProbabilities) {
  auto synth = run_cli("data synth --preset tiny --out " + (*dir_ / "tiny.pkl"));
  ASSERT_EQ(synth.status, 0) << synth.output;
  auto out = run_cli("predict --checkpoint " + (*dir_ / "student/best.pt") + " --input " +
                     (*dir_ / "tiny.pkl") + " --split test --limit 5");
  ASSERT_EQ(out.status, 0) << out.output;
  const auto lines = json_lines(out.output);
  ASSERT_EQ(lines.size(), 5u) << out.output;
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["index"].get<int>(), static_cast<int>(i));
    const auto p = lines[i]["probabilities"].get<std::vector<double>>();
    ASSERT_EQ(p.size(), 7u);
    double sum = 0, best = -1;
    int argmax = 0;
    for (int c = 0; c < 7; ++c) {
      sum += p[c];
      if (p[c] > best) best = p[c], argmax = c;
    }
    EXPECT_NEAR(sum, 1.0, 1e-5);
    EXPECT_EQ(lines[i]["class"].get<int>(), argmax - 3);
  }
}

TEST_F(PredictCli, NpyClipWorksAndWrongShapesAreNamed) {
  if (run_command("/usr/bin/python3 -c 'import numpy'").status != 0)
    GTEST_SKIP() << "needs Debian's python3-numpy to write .npy fixtures";
  const std::string clip = *dir_ / "clip.npy";
  const std::string wrong = *dir_ / "wrong.npy";
  ASSERT_EQ(run_command("/usr/bin/python3 -c \"import numpy as np; np.save('" + clip +
                        "', np.random.RandomState(0).randn(16, 35)); np.save('" + wrong +
                        "', np.zeros((16, 36), np.float32))\"")
                .status,
            0);
  auto out = run_cli("predict --checkpoint " + (*dir_ / "student/best.pt") + " --input " + clip);
  ASSERT_EQ(out.status, 0) << out.output;
  EXPECT_EQ(json_lines(out.output).size(), 1u) << out.output;
  auto bad = run_cli("predict --checkpoint " + (*dir_ / "student/best.pt") + " --input " + wrong);
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("wrong.npy: video features have shape [16,36] per sample; the "
                            "student expects [16,35]"),
            std::string::npos)
      << bad.output;
  auto teacher =
      run_cli("predict --checkpoint " + (*dir_ / "teacher/best.pt") + " --input " + clip);
  EXPECT_NE(teacher.status, 0);
  EXPECT_NE(teacher.output.find("holds a teacher"), std::string::npos) << teacher.output;
}

TEST_F(PredictCli, EvalReportsMetricsAndMissingModalities) {
  auto out = run_cli("eval --run " + (*dir_ / "teacher") + " --drop audio,text --json");
  ASSERT_EQ(out.status, 0) << out.output;
  const auto j = nlohmann::json::parse(out.output.substr(out.output.find('{')));
  EXPECT_EQ(j["dropped"].get<std::string>(), "audio,text");
  EXPECT_EQ(j["classification"]["confusion"].size(), 7u);
  EXPECT_FALSE(j.contains("event_mass"));  // maps of zeroed inputs say nothing
  // Without --drop, every cross-modal transformer's event mass against its chance level.
  out = run_cli("eval --run " + (*dir_ / "teacher") + " --json");
  ASSERT_EQ(out.status, 0) << out.output;
  const auto full = nlohmann::json::parse(out.output.substr(out.output.find('{')));
  ASSERT_TRUE(full.contains("event_mass")) << out.output;
  EXPECT_EQ(full["event_mass"].size(), 2u);  // the Video Branch: A<-V and L<-V
  const auto& va = full["event_mass"]["A<-V"];
  EXPECT_GT(va["chance"].get<double>(), 0.0);
  EXPECT_NEAR(va["lift"].get<double>(), va["mass"].get<double>() / va["chance"].get<double>(),
              1e-9);
  auto missing = run_cli("eval --run " + (*dir_ / "nowhere"));
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.output.find("--run " + (*dir_ / "nowhere") +
                                ": no such run directory or checkpoint file"),
            std::string::npos)
      << missing.output;
}

}  // namespace
}  // namespace mmkd::testing
