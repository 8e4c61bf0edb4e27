// The distillation objective end to end: map shapes per configuration, gradients (student and
// heads, never the teacher), beta = 0 equals the student alone, every Table-1 config runs.
#include "mmkd/distill/distill_objective.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "../support/cli.h"
#include "../support/run_log.h"
#include "distill_test_util.h"
#include "mmkd/core/error.h"
#include "mmkd/data/batch_loader.h"
#include "mmkd/distill/event_geometry.h"
#include "mmkd/train/checkpoint.h"
#include "mmkd/train/run.h"

namespace mmkd::distill {
namespace {

using mmkd::testing::log_column;
using mmkd::testing::repo_path;
using mmkd::testing::run_cli;
using mmkd::testing::TempDir;

TEST(DistillShapes, DownsampledProxiesGiveTheTeachersMapShapeForEveryPair) {
  for (const auto& shape : {models::InputShape::tiny(), models::InputShape::mosei()}) {
    for (const auto& pairing : models::pairing_table()) {
      auto teacher = models::build_model(teacher_config(pairing.teacher), shape);
      auto student = models::build_model(
          student_config(pairing.student, models::ProxyMode::kDownsample), shape);
      for (const auto& pair : pairing.pairs) {
        EXPECT_EQ(student->geometry().transformer(pair.student).map_shape(),
                  teacher->geometry().transformer(pair.teacher).map_shape())
            << "configuration " << pairing.id << " pair " << pair.student << " at "
            << shape.describe();
      }
    }
  }
}

/// The single-method form of `name` with small CRD banks.
DistillConfig method(const std::string& name) {
  YAML::Node node;
  node["method"] = name;
  node["crd"]["num_negatives"] = 16;
  node["crd"]["row_negatives"] = 8;
  return parse_distill_config(node);
}

TEST(DistillObjective, UpsamplersMapTeacherShapesToStudentShapes) {
  const TinyData tiny;
  auto teacher = models::build_model(teacher_config(models::TeacherArch::kComplete), tiny.shape);
  auto student = models::build_model(
      student_config(models::StudentArch::kLanguageAudio, models::ProxyMode::kKeep), tiny.shape);
  DistillObjective objective(method("edam"), student, teacher, tiny.data.split("train"), 0);
  EXPECT_EQ(objective.name(), "edam-up");
  const auto params = objective.parameters();
  ASSERT_FALSE(params.empty()) << "T-up has learned upsamplers";
  // Student maps V<-A, V<-L are Tv x Tv; the teacher's are Ta x Tv and Tl x Tv.
  const data::Batch batch = tiny.batch();
  const auto out = student->forward({batch.features, batch.padding}, objective.taps());
  const auto loss = objective.compute(batch, out, true);
  ASSERT_TRUE(loss.kd.defined());
  EXPECT_TRUE(torch::isfinite(loss.total).item<bool>());
  loss.total.backward();
  for (const auto& p : params) {
    ASSERT_TRUE(p.grad().defined());
  }
  // Without upsampling, mismatched shapes are refused with a clear message.
  DistillConfig crd = method("crd_attention_map");
  try {
    DistillObjective refused(crd, student, teacher, tiny.data.split("train"), 0);
    FAIL() << "CRD on maps of different shapes must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("student map V<-L is 16x16 but teacher map V<-L is 8x16"),
              std::string::npos)
        << e.what();
  }
}

class DistillGradients : public ::testing::TestWithParam<std::string> {};

TEST_P(DistillGradients, ReachStudentAndHeadsNeverTheTeacher) {
  const TinyData tiny;
  torch::manual_seed(0);
  auto teacher = models::build_model(teacher_config(models::TeacherArch::kComplete), tiny.shape);
  auto student = models::build_model(
      student_config(models::StudentArch::kLanguageAudio, models::ProxyMode::kDownsample),
      tiny.shape);
  std::map<std::string, torch::Tensor> before;
  for (const auto& item : teacher->named_parameters()) before[item.key()] = item.value().clone();
  DistillConfig config = method(GetParam());
  config.alpha = 0.0;  // only L_KD: every student gradient below comes from distillation
  DistillObjective objective(config, student, teacher, tiny.data.split("train"), 0);
  student->train();
  const data::Batch batch = tiny.batch();
  const auto out = student->forward({batch.features, batch.padding}, objective.taps());
  const auto loss = objective.compute(batch, out, true);
  ASSERT_TRUE(loss.kd.defined());
  loss.total.backward();
  double student_grad = 0;
  for (const auto& p : student->parameters())
    if (p.grad().defined()) student_grad += p.grad().abs().sum().item<double>();
  EXPECT_GT(student_grad, 0) << GetParam();
  for (const auto& p : objective.parameters())
    EXPECT_TRUE(p.grad().defined()) << "a distillation head got no gradient";
  for (const auto& item : teacher->named_parameters()) {
    EXPECT_FALSE(item.value().requires_grad()) << item.key();
    EXPECT_FALSE(item.value().grad().defined()) << item.key();
    EXPECT_TRUE(torch::equal(item.value(), before[item.key()])) << item.key();
  }
  EXPECT_FALSE(teacher->is_training()) << "a frozen teacher stays in eval mode";
}

INSTANTIATE_TEST_SUITE_P(Methods, DistillGradients,
                         ::testing::Values("crd_final", "crd_penultimate", "crd_post_attention",
                                           "crd_attention_map", "edam", "ideal_map", "logit_kd",
                                           "fitnet", "minilm", "tinybert"),
                         [](const auto& info) { return std::string(info.param); });

const char* kTinyRun =
    " --set data.preset=tiny --set model.d_model=8 --set model.layers=1 --set model.heads=2"
    " --set train.epochs=2 --set train.threads=1 --set train.progress=false"
    " --set distill.crd.num_negatives=32 --set distill.crd.row_negatives=8";

/// Trains configs/teacher_<kind>.yaml for one epoch at the tiny shape and width (one layer, as the
/// students of kTinyRun) into `run_dir`.
mmkd::testing::CommandResult train_tiny_teacher(const std::string& kind,
                                                const std::string& run_dir) {
  return run_cli("train --config " + repo_path("configs/teacher_" + kind + ".yaml") +
                 " --set data.preset=tiny --set model.d_model=8 --set model.layers=1"
                 " --set model.heads=2 --set train.epochs=1 --set train.threads=1 --run " +
                 run_dir);
}

TEST(DistillRun, BetaZeroReproducesTheStudentAloneExactly) {
  TempDir dir("beta0");
  auto teacher = train_tiny_teacher("complete", dir / "teacher");
  ASSERT_EQ(teacher.status, 0) << teacher.output;
  auto alone = run_cli("train --config " + repo_path("configs/student_5.yaml") + kTinyRun +
                       " --run " + (dir / "alone"));
  ASSERT_EQ(alone.status, 0) << alone.output;
  for (const std::string config : {"c5_edam_down", "c5_crd_final"}) {
    auto distilled = run_cli("distill --config " + repo_path("configs/table1/" + config + ".yaml") +
                             kTinyRun + " --set distill.beta=0 --teacher " + (dir / "teacher") +
                             " --run " + (dir / config));
    ASSERT_EQ(distilled.status, 0) << distilled.output;
    auto a = train::load_model(dir / "alone/last.pt", torch::kCPU);
    auto b = train::load_model(dir / (config + "/last.pt"), torch::kCPU);
    for (const auto& item : a->named_parameters())
      EXPECT_TRUE(torch::equal(item.value(), b->named_parameters()[item.key()]))
          << config << ": " << item.key();
  }
}

TEST(DistillRun, TeacherCacheTrainsTheStudentTheTeacherPerBatchTrains) {
  TempDir dir("teacher_cache");
  auto teacher = train_tiny_teacher("complete", dir / "teacher");
  ASSERT_EQ(teacher.status, 0) << teacher.output;
  const std::string base = "distill --config " + repo_path("configs/table1/c5_edam_down.yaml") +
                           kTinyRun + " --teacher " + (dir / "teacher");
  auto cached = run_cli(base + " --run " + (dir / "cached"));
  ASSERT_EQ(cached.status, 0) << cached.output;
  EXPECT_NE(cached.output.find("teacher cache: "), std::string::npos) << cached.output;
  EXPECT_NE(cached.output.find(" training samples, "), std::string::npos) << cached.output;
  auto plain = run_cli(base + " --set distill.teacher_cache_mb=0 --run " + (dir / "plain"));
  ASSERT_EQ(plain.status, 0) << plain.output;
  EXPECT_EQ(plain.output.find("teacher cache: "), std::string::npos) << plain.output;
  // The KD loss each epoch is where wrong teacher rows would show (other maps, another
  // cross-entropy); float rounding (the cache ran the teacher on other batches) moves it by far
  // less than 1e-4. The weights then drift by rounding only: under 1e-4 here on both stacks.
  const auto with_cache = log_column(dir / "cached/log.csv", "train_kd");
  const auto without = log_column(dir / "plain/log.csv", "train_kd");
  ASSERT_EQ(with_cache.size(), 2u);
  ASSERT_EQ(with_cache.size(), without.size());
  for (size_t e = 0; e < without.size(); ++e)
    EXPECT_NEAR(with_cache[e], without[e], 1e-4 * std::abs(without[e])) << "epoch " << e + 1;
  auto a = train::load_model(dir / "cached/last.pt", torch::kCPU);
  auto b = train::load_model(dir / "plain/last.pt", torch::kCPU);
  for (const auto& item : a->named_parameters()) {
    const auto other = b->named_parameters()[item.key()];
    EXPECT_TRUE(torch::allclose(item.value(), other, 1e-3, 2e-4))
        << item.key() << ": max difference " << (item.value() - other).abs().max().item<double>();
  }
}

class Table1Config : public ::testing::TestWithParam<std::string> {};

TEST_P(Table1Config, RunsEndToEndOnTiny) {
  const std::string name = GetParam();
  TempDir dir("table1_" + name);
  const int configuration = name[1] - '0';
  const char* teachers[] = {"", "complete", "video", "language", "audio", "complete"};
  auto teacher = train_tiny_teacher(teachers[configuration], dir / "teacher");
  ASSERT_EQ(teacher.status, 0) << teacher.output;
  auto run = run_cli("distill --config " + repo_path("configs/table1/" + name + ".yaml") +
                     kTinyRun + " --teacher " + (dir / "teacher") + " --run " + (dir / "run"));
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("teacher event mass (valid)"), std::string::npos) << run.output;
  EXPECT_TRUE(std::filesystem::exists(dir / "run/metrics.json"));
}

std::vector<std::string> table1_configs() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(repo_path("configs/table1")))
    names.push_back(entry.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

INSTANTIATE_TEST_SUITE_P(Configs, Table1Config, ::testing::ValuesIn(table1_configs()));

TEST(DistillRun, WrongTeacherIsRefusedBeforeTraining) {
  TempDir dir("wrong_teacher");
  auto teacher = train_tiny_teacher("video", dir / "teacher");
  ASSERT_EQ(teacher.status, 0) << teacher.output;
  auto run = run_cli("distill --config " + repo_path("configs/table1/c5_edam_down.yaml") +
                     kTinyRun + " --teacher " + (dir / "teacher") + " --run " + (dir / "run"));
  EXPECT_NE(run.status, 0);
  EXPECT_NE(run.output.find("configuration 5 (KD from Language and Audio Branches"),
            std::string::npos)
      << run.output;
  EXPECT_EQ(run.output.find("epoch"), std::string::npos) << "must fail before training";
}

}  // namespace
}  // namespace mmkd::distill
