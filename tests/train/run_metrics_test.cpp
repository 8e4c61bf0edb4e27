// metrics.json through its type: a round trip keeps every field and an objective's sections,
// views read what finish_run writes, and a broken file is refused naming it.
#include "mmkd/train/run_metrics.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "../support/cli.h"
#include "mmkd/core/error.h"

namespace mmkd::train {
namespace {

using mmkd::testing::TempDir;

RunMetrics example() {
  RunMetrics m;
  m.model = "student 5 (language_audio) d=8";
  m.data = "synthetic tiny";
  m.best_epoch = 3;
  m.epochs = 4;
  m.best_val_loss = 1.25;
  m.test = {{"loss", 1.5},
            {"classification",
             {{"accuracy", 0.5}, {"f1_weighted", 0.4}, {"confusion", {{1, 2}, {3, 4}}}}}};
  m.majority_rate = 0.3;
  m.parameters = 1234;
  m.projection_parameters = 34;
  m.latency = {{"batch_1", {{"median_ms", 2.5}}}, {"batch_64", {{"median_ms", 30.0}}}};
  m.extra["distill"] = {{"method", "edam-down"}};
  m.extra["event_mass"] = {{"student", {{"V<-A", {{"lift", 1.0}}}, {"V<-L", {{"lift", 2.0}}}}}};
  return m;
}

TEST(RunMetrics, RoundTripKeepsEveryFieldAndSection) {
  TempDir dir("run_metrics");
  const RunDir run{dir.str()};
  EXPECT_FALSE(run.finished());
  EXPECT_FALSE(RunMetrics::read(run).has_value());
  example().write(run);
  EXPECT_TRUE(run.finished());
  const RunMetrics back = RunMetrics::load(run);
  EXPECT_EQ(back.to_json(), example().to_json());
  EXPECT_EQ(back.model, "student 5 (language_audio) d=8");
  EXPECT_EQ(back.best_epoch, 3);
  EXPECT_DOUBLE_EQ(back.majority_rate, 0.3);
  EXPECT_EQ(back.extra["distill"]["method"], "edam-down");
  // The file keeps the layout readers outside mmkd rely on.
  const auto j = nlohmann::json::parse(std::ifstream(run.metrics()));
  EXPECT_DOUBLE_EQ(j["test"]["majority_rate"].get<double>(), 0.3);
  EXPECT_DOUBLE_EQ(j["test"]["classification"]["accuracy"].get<double>(), 0.5);
  EXPECT_EQ(j["parameters"], 1234);
}

TEST(RunMetrics, ViewsReadTheRecordedValues) {
  const RunMetrics m = example();
  EXPECT_EQ(m.test_score("accuracy"), 0.5);
  EXPECT_EQ(m.test_score("f1_macro"), std::nullopt);  // not recorded
  EXPECT_EQ(m.latency_ms(64), 30.0);
  EXPECT_EQ(m.latency_ms(8), std::nullopt);
  EXPECT_EQ(m.mean_lift("student"), 1.5);  // (1 + 2) / 2
  EXPECT_EQ(m.mean_lift("teacher"), std::nullopt);
  EXPECT_EQ(m.confusion(), (std::vector<std::vector<double>>{{1, 2}, {3, 4}}));
}

TEST(RunMetrics, BrokenOrForeignFilesAreRefusedNamingThem) {
  TempDir dir("run_metrics_bad");
  const RunDir run{dir.str()};
  std::ofstream(run.metrics()) << R"({"test": {}, "parameters": 1})";
  try {
    RunMetrics::load(run);
    FAIL() << "a metrics.json without 'model' was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(run.metrics() + ": no key 'model'"), std::string::npos)
        << e.what();
  }
  auto j = example().to_json();
  j["epochs"] = "four";
  std::ofstream(run.metrics(), std::ios::trunc) << j.dump();
  try {
    RunMetrics::load(run);
    FAIL() << "a string epoch count was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("key 'epochs' has the wrong type"), std::string::npos)
        << e.what();
  }
  std::filesystem::remove(run.metrics());
  try {
    RunMetrics::load(run);
    FAIL() << "an unfinished run was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has the run in " + run.path + " finished?"),
              std::string::npos)
        << e.what();
  }
}

TEST(RunDir, NamesEveryFileOfARun) {
  const RunDir run{"runs/x"};
  EXPECT_EQ(run.config(), "runs/x/config.yaml");
  EXPECT_EQ(run.best(), "runs/x/best.pt");
  EXPECT_EQ(run.last(), "runs/x/last.pt");
  EXPECT_EQ(run.missing_modality("audio,text"), "runs/x/missing-audio,text.json");
  EXPECT_EQ(study_run_dir("out", "t-seed0").path, "out/runs/t-seed0");
}

}  // namespace
}  // namespace mmkd::train
