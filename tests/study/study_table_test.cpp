#include "mmkd/study/study_table.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../support/cli.h"
#include "mmkd/study/html_report.h"
#include "mmkd/train/run_metrics.h"

namespace mmkd::study {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

void write_metrics(const std::string& root, const std::string& run, double acc, double f1,
                   double lift) {
  const train::RunDir dir = train::study_run_dir(root, run);
  fs::create_directories(dir.path);
  train::RunMetrics m;
  m.test["classification"] = {{"accuracy", acc}, {"f1_weighted", f1}, {"f1_macro", f1 / 2}};
  m.majority_rate = 0.4;
  m.parameters = 1000;
  m.latency["batch_1"]["median_ms"] = 2.0;
  m.latency["batch_64"]["median_ms"] = 20.0;
  if (lift > 0)
    m.extra["event_mass"] = {
        {"teacher", {{"V<-A", {{"lift", lift}}}, {"V<-L", {{"lift", lift + 1}}}}},
        {"student", {{"V<-A", {{"lift", 1.0}}}}}};
  m.write(dir);
}

StudyConfig two_rows() {
  StudyConfig config;
  config.seeds = 2;
  SectionSpec section;
  section.title = "five";
  section.teacher = RowSpec{"t", "t.yaml", {}, PaperFigures{49.779, 48.817}};
  section.rows.push_back(RowSpec{"s", "s.yaml", {}, std::nullopt});
  config.sections.push_back(section);
  return config;
}

TEST(StudyTable, MeanAndStdOverSeedsFromTwoRoots) {
  TempDir dir("study_table");
  // Seed 0 in one root, seed 1 in another (two shards).
  write_metrics(dir / "a", "t-seed0", 0.50, 0.40, 0);
  write_metrics(dir / "b", "t-seed1", 0.60, 0.44, 0);
  write_metrics(dir / "a", "s-seed0", 0.30, 0.20, 2.0);
  const auto rows = collect_table(two_rows(), {dir / "a", dir / "b"});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].acc7, (std::vector<double>{50.0, 60.0}));
  EXPECT_EQ(rows[1].acc7.size(), 1u);
  // Teacher lift of the student's run: mean over pairs (2 and 3) = 2.5.
  ASSERT_EQ(rows[1].teacher_lift.size(), 1u);
  EXPECT_DOUBLE_EQ(rows[1].teacher_lift[0], 2.5);
  const std::string md = table_markdown(rows);
  // 55 ± 7.07 (sample std of 50 and 60), F1 42 ± 2.83; the paper's figures beside them.
  EXPECT_NE(md.find("| t | teacher | 2/2 | 55.00 ± 7.07 | 42.00 ± 2.83 | 49.78 | 48.82 |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| s | student | 1/2 | 30.00 ± 0.00 |"), std::string::npos) << md;
  EXPECT_NE(md.find("Majority-class rate on test: 40.00 %"), std::string::npos) << md;
  const std::string csv = table_csv(rows);
  EXPECT_NE(csv.find("\"five\",t,teacher,2,55,7.07107,42,2.82843,49.78,48.82"), std::string::npos)
      << csv;
}

TEST(StudyTable, RemeasuredLatencyReplacesTheOneTakenAtTraining) {
  TempDir dir("study_latency");
  write_metrics(dir / "a", "t-seed0", 0.50, 0.40, 0);  // latency 2.0 / 20.0 ms when trained
  write_metrics(dir / "a", "t-seed1", 0.60, 0.44, 0);
  std::ofstream(dir / "a/runs/t-seed1/latency.json")
      << R"({"batch_1": {"median_ms": 0.5}, "batch_64": {"median_ms": 8.0}})";
  const auto rows = collect_table(two_rows(), {dir / "a"});
  EXPECT_EQ(rows[0].latency_1, (std::vector<double>{2.0, 0.5}));
  EXPECT_EQ(rows[0].latency_64, (std::vector<double>{20.0, 8.0}));
  std::ofstream(dir / "a/runs/t-seed0/latency.json") << "{not json";
  try {
    collect_table(two_rows(), {dir / "a"});
    ADD_FAILURE() << "a broken latency.json was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("t-seed0/latency.json: not valid JSON"), std::string::npos)
        << e.what();
  }
}

TEST(HtmlReport, Base64MatchesRfc4648Vectors) {
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64(std::string("\xff\x00\x10", 3)), "/wAQ");
}

TEST(HtmlReport, ChartHasOneLinePerSeriesAndEscapesNames) {
  const std::string svg = svg_chart({{"a<b", {1, 2, 3}}, {"c", {3, 2}}}, "val acc7");
  size_t lines = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos;
       at = svg.find("<polyline", at + 1))
    ++lines;
  EXPECT_EQ(lines, 2u);
  EXPECT_NE(svg.find("a&lt;b"), std::string::npos);
  // y = 3 is the maximum: drawn at the top edge of the plot (T = 20).
  EXPECT_NE(svg.find(",20.0 "), std::string::npos) << svg;
}

}  // namespace
}  // namespace mmkd::study
