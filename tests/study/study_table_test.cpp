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

/// A student alone ("alone"), a teacher "t" and two distilled rows: "edam" (method edam, compared
/// with the study's baseline) and "crd" (method crd, its own baseline "none").
StudyConfig with_baseline() {
  StudyConfig config;
  config.seeds = 3;
  config.baseline = "alone";
  SectionSpec lone;
  lone.title = "alone";
  lone.rows.push_back(RowSpec{"alone", "a.yaml", {}, std::nullopt});
  SectionSpec distilled;
  distilled.title = "five";
  distilled.teacher = RowSpec{"t", "t.yaml", {}, std::nullopt};
  distilled.rows.push_back(RowSpec{"edam", "s.yaml", {}, std::nullopt});
  RowSpec crd{"crd", "s.yaml", {}, std::nullopt};
  crd.baseline = "none";
  distilled.rows.push_back(crd);
  config.sections = {lone, distilled};
  return config;
}

void write_distilled(const std::string& root, const std::string& run, double acc, double lift,
                     const std::string& method) {
  write_metrics(root, run, acc, acc, lift);
  const train::RunDir dir = train::study_run_dir(root, run);
  train::RunMetrics m = train::RunMetrics::load(dir);
  m.extra["distill"] = {{"terms", {{{"method", method}, {"weight", 1.0}}}}};
  m.write(dir);
}

TEST(StudyTable, DistilledRowsAreComparedWithTheirBaselineSeedBySeed) {
  TempDir tmp("study_paired");
  const std::string dir = tmp / "r";
  // Alone: 40, 42, 41 %; EDAM: 42, 45, 42 % -> differences 2, 3, 1 (mean 2, sd 1).
  const double alone[] = {0.40, 0.42, 0.41}, edam[] = {0.42, 0.45, 0.42};
  for (int s = 0; s < 3; ++s) {
    write_metrics(dir, "alone-seed" + std::to_string(s), alone[s], alone[s], 0);
    write_metrics(dir, "t-seed" + std::to_string(s), 0.6, 0.6, 0);
    write_distilled(dir, "edam-seed" + std::to_string(s), edam[s], 1.0 + 0.2 * s, "edam");
    write_distilled(dir, "crd-seed" + std::to_string(s), 0.5, 1.0, "crd");
  }
  const auto rows = collect_table(with_baseline(), {dir});
  ASSERT_EQ(rows.size(), 4u);
  const TableRow& e = rows[2];
  ASSERT_EQ(e.name, "edam");
  EXPECT_EQ(e.baseline, "alone");
  ASSERT_TRUE(e.vs_baseline);
  EXPECT_EQ(e.vs_baseline->n, 3);
  EXPECT_NEAR(e.vs_baseline->mean, 2.0, 1e-9);
  EXPECT_NEAR(e.vs_baseline->std, 1.0, 1e-9);
  // Neither the teacher, the lone row nor the row with baseline none is compared.
  EXPECT_FALSE(rows[0].vs_baseline);
  EXPECT_FALSE(rows[1].vs_baseline);
  EXPECT_FALSE(rows[3].vs_baseline);
  EXPECT_EQ(rows[3].baseline, "");
  // t = 2 sqrt(3), 2 df: p = 1 - 2 sqrt(3) / sqrt(14); interval 2 ± 4.303 / sqrt(3).
  const std::string md = table_markdown(rows);
  EXPECT_NE(md.find("| alone | +2.00 [-0.48, +4.48] | 0.074 |"), std::string::npos) << md;
  const std::string csv = table_csv(rows);
  EXPECT_NE(csv.find(",alone,3,2,-0.484"), std::string::npos) << csv;
  // runs.csv: one line per finished run, with the baseline's acc7 of the same seed and the gain.
  const std::string runs = runs_csv(rows);
  EXPECT_NE(runs.find("\"five\",edam,student,1,edam,45,45,22.5,1.7,1,alone,42,3\n"),
            std::string::npos)
      << runs;
  // The scatter's points: EDAM's three seeds (lift = mean over pairs of l and l + 1).
  const auto points = lift_gain_points(rows);
  ASSERT_EQ(points.size(), 3u);
  EXPECT_EQ(points[2].row, "edam");
  EXPECT_EQ(points[2].seed, 2);
  EXPECT_NEAR(points[2].teacher_lift, 1.9, 1e-9);
  EXPECT_NEAR(points[2].gain, 1.0, 1e-9);
  const std::string svg = svg_lift_gain(points);
  size_t circles = 0;
  for (size_t at = svg.find("<circle"); at != std::string::npos; at = svg.find("<circle", at + 1))
    ++circles;
  EXPECT_EQ(circles, 3u);
  // Lifts 1.5, 1.7, 1.9 against gains 2, 3, 1: r = -0.5.
  EXPECT_NE(svg.find("EDAM: r = -0.50"), std::string::npos) << svg;
}

TEST(StudyTable, AMissingBaselineSeedLeavesThatSeedOut) {
  TempDir tmp("study_paired_missing");
  const std::string dir = tmp / "r";
  write_metrics(dir, "alone-seed0", 0.40, 0.40, 0);
  write_metrics(dir, "t-seed0", 0.6, 0.6, 0);
  write_metrics(dir, "t-seed1", 0.6, 0.6, 0);
  write_distilled(dir, "edam-seed0", 0.43, 1.2, "edam");
  write_distilled(dir, "edam-seed1", 0.50, 1.2, "edam");
  const auto rows = collect_table(with_baseline(), {dir});
  ASSERT_TRUE(rows[2].vs_baseline);
  EXPECT_EQ(rows[2].vs_baseline->n, 1);
  EXPECT_NEAR(rows[2].vs_baseline->mean, 3.0, 1e-9);
  EXPECT_NE(table_markdown(rows).find("| alone | +3.00 (1 seed) |  |"), std::string::npos)
      << table_markdown(rows);
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
