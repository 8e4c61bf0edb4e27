// Training end to end on the tiny preset: resume equality after a kill, configuration errors,
// checkpoints, missing-modality evaluation and the NaN guard.
#include "mmkd/train/trainer.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "../support/cli.h"
#include "../support/run_log.h"
#include "mmkd/core/error.h"
#include "mmkd/core/interrupt.h"
#include "mmkd/core/torch_compat.h"
#include "mmkd/train/checkpoint.h"
#include "mmkd/train/evaluate.h"
#include "mmkd/train/labels.h"
#include "mmkd/train/run.h"
#include "mmkd/train/run_metrics.h"

namespace mmkd::train {
namespace {

using mmkd::testing::repo_path;
using mmkd::testing::run_cli;
using mmkd::testing::TempDir;

/// A small, fast variant of a config: tiny data, narrow model, one thread (bit-identical runs).
std::vector<std::string> tiny_overrides(int epochs) {
  return {"data.preset=tiny",
          "model.d_model=8",
          "model.layers=1",
          "model.heads=2",
          "train.batch_size=32",
          "train.threads=1",
          "train.epochs=" + std::to_string(epochs),
          "train.progress=false"};
}

std::string set_flags(const std::vector<std::string>& overrides) {
  std::string flags;
  for (const auto& o : overrides) flags += " --set " + o;
  return flags;
}

void expect_same_weights(const std::string& a, const std::string& b) {
  models::MultimodalNet x = load_model(a, torch::kCPU);
  models::MultimodalNet y = load_model(b, torch::kCPU);
  const auto px = x->named_parameters();
  const auto py = y->named_parameters();
  ASSERT_EQ(px.size(), py.size());
  for (const auto& item : px) {
    ASSERT_TRUE(py.contains(item.key())) << item.key();
    EXPECT_TRUE(torch::equal(item.value(), py[item.key()])) << "parameter " << item.key();
  }
}

int log_rows(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  int rows = -1;  // header
  while (std::getline(in, line)) ++rows;
  return rows;
}

TEST(Trainer, KilledRunResumesToTheSameWeights) {
  TempDir dir("resume");
  const std::string config = repo_path("configs/student_5.yaml");
  const std::string flags = set_flags(tiny_overrides(4));
  auto whole = run_cli("train --config " + config + flags + " --run " + (dir / "whole"));
  ASSERT_EQ(whole.status, 0) << whole.output;

  // Start the same run and kill it (SIGKILL: no chance to clean up) once an epoch has finished.
  const std::string cut = dir / "cut";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const std::string command = std::string(MMKD_CLI_PATH) + " train --config " + config + flags +
                                " --run " + cut + " >/dev/null 2>&1";
    execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  while (log_rows(cut + "/log.csv") < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_GE(log_rows(cut + "/log.csv"), 1) << "the run never finished an epoch";
  ASSERT_LT(log_rows(cut + "/log.csv"), 4) << "the run finished before it could be killed";

  auto resumed = run_cli("train --resume " + cut);
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming"), std::string::npos) << resumed.output;
  EXPECT_EQ(log_rows(cut + "/log.csv"), 4);
  expect_same_weights(dir / "whole/last.pt", cut + "/last.pt");
  expect_same_weights(dir / "whole/best.pt", cut + "/best.pt");
}

/// The val_loss column of a run's log.csv.
std::vector<double> val_losses(const std::string& path) {
  return mmkd::testing::log_column(path, "val_loss");
}

TEST(Trainer, EarlyStopEndsTheRunWhenValidationStopsImproving) {
  TempDir dir("early_stop");
  // A learning rate far too high for the tiny data: the validation loss soon stops falling.
  std::vector<std::string> overrides = tiny_overrides(12);
  overrides.push_back("train.lr=0.03");
  overrides.push_back("train.early_stop=2");
  const auto run = run_cli("train --config " + repo_path("configs/student_5.yaml") +
                           set_flags(overrides) + " --run " + (dir / "run"));
  ASSERT_EQ(run.status, 0) << run.output;
  const std::vector<double> losses = val_losses(dir / "run/log.csv");
  ASSERT_FALSE(losses.empty());
  const auto best = std::min_element(losses.begin(), losses.end()) - losses.begin() + 1;
  // It ran exactly two epochs past its best one, which were not better.
  ASSERT_LT(losses.size(), 12u) << run.output;
  EXPECT_EQ(static_cast<int64_t>(losses.size()), best + 2) << run.output;
  EXPECT_NE(run.output.find("early stop after epoch " + std::to_string(best + 2) +
                            ": no lower validation loss since epoch " + std::to_string(best)),
            std::string::npos)
      << run.output;
  const auto metrics = RunMetrics::load(RunDir{dir / "run"});
  EXPECT_EQ(metrics.epochs, best + 2);
  EXPECT_EQ(metrics.best_epoch, best);
}

TEST(Trainer, ConfigErrorsComeBeforeTrainingAndNameTheKey) {
  const std::string config = repo_path("configs/teacher_complete.yaml");
  auto typo = run_cli("train --config " + config + " --set train.epohcs=3");
  EXPECT_NE(typo.status, 0);
  EXPECT_NE(typo.output.find("unknown config key 'train.epohcs'"), std::string::npos)
      << typo.output;
  EXPECT_NE(typo.output.find("did you mean 'train.epochs'"), std::string::npos) << typo.output;
  auto lr = run_cli("train --config " + config + " --set train.lr=-1");
  EXPECT_NE(lr.status, 0);
  EXPECT_NE(lr.output.find("'train.lr': the learning rate must be > 0"), std::string::npos)
      << lr.output;
  auto type = run_cli("train --config " + config + " --set train.batch_size=big");
  EXPECT_NE(type.output.find("'train.batch_size': expected an integer"), std::string::npos)
      << type.output;
  auto section = run_cli("train --config " + config + " --set trian.lr=1");
  EXPECT_NE(section.output.find("did you mean 'train'"), std::string::npos) << section.output;
  EXPECT_EQ(section.output.find("epoch"), std::string::npos) << "training must not start";
}

TEST(Trainer, StackOptionsAreCheckedByName) {
  const std::string config = repo_path("configs/student_5.yaml");
  auto adam = run_cli("train --config " + config + " --set train.adam=fast");
  EXPECT_NE(adam.status, 0);
  EXPECT_NE(adam.output.find("'train.adam': expected auto, loop or fused, got 'fast'"),
            std::string::npos)
      << adam.output;
  auto graphs = run_cli("train --config " + config + " --set train.cuda_graphs=on");
  EXPECT_NE(graphs.status, 0);
  EXPECT_NE(graphs.output.find("'train.cuda_graphs': on needs a CUDA device"), std::string::npos)
      << graphs.output;
  auto cast = run_cli("train --config " + config + " --set train.autocast=fp16");
  EXPECT_NE(cast.output.find("'train.autocast': expected off or bf16, got 'fp16'"),
            std::string::npos)
      << cast.output;
}

TEST(Trainer, Bf16AutocastTrainsAndChangesTheArithmetic) {
  TempDir dir("autocast");
  if (!compat::bf16_autocast_supported(torch::kCPU)) {
    auto refused = run_cli("train --config " + repo_path("configs/student_5.yaml") +
                           set_flags(tiny_overrides(1)) + " --set train.autocast=bf16 --run " +
                           (dir / "refused"));
    EXPECT_NE(refused.status, 0);
    EXPECT_NE(refused.output.find("'train.autocast': bf16 on cpu needs LibTorch 2.x or a GPU"),
              std::string::npos)
        << refused.output;
    return;
  }
  std::map<std::string, torch::Tensor> weights;
  for (const std::string mode : {"off", "bf16"}) {
    auto overrides = tiny_overrides(1);
    overrides.push_back("train.autocast=" + mode);
    RunConfig config = load_run_config(repo_path("configs/student_5.yaml"), overrides);
    data::MoseiData data = data::load_data(config.data);
    models::MultimodalNet model = build_seeded_model(config, input_shape_of(data));
    TaskObjective objective(config.model);
    Trainer trainer(config, RunDir{dir / mode}, model, objective, data);
    const FitResult result = trainer.fit(false);
    EXPECT_EQ(result.epochs_completed, 1);
    EXPECT_TRUE(std::isfinite(result.best_val_loss)) << mode;
    const auto w = model->named_parameters()["head.out_layer.weight"];
    EXPECT_EQ(w.scalar_type(), torch::kFloat32) << "weights stay float32 under autocast";
    weights[mode] = w.detach().clone();
  }
  // bf16 matmuls round differently: the same seed ends at other weights.
  EXPECT_FALSE(torch::allclose(weights["off"], weights["bf16"], 1e-6, 1e-7));
}

TEST(Trainer, CheckpointOfAnotherArchitectureIsRefused) {
  TempDir dir("arch");
  RunConfig student = load_run_config(repo_path("configs/student_5.yaml"), tiny_overrides(1));
  RunConfig teacher =
      load_run_config(repo_path("configs/teacher_complete.yaml"), tiny_overrides(1));
  const models::InputShape shape = models::InputShape::tiny();
  models::MultimodalNet s = build_seeded_model(student, shape);
  models::MultimodalNet t = build_seeded_model(teacher, shape);
  CheckpointInfo info;
  info.config_yaml = YAML::Dump(student.resolved());
  info.shape = shape;
  save_checkpoint(dir / "student.pt", s, info);
  try {
    load_checkpoint_into(dir / "student.pt", t);
    FAIL() << "loading a student checkpoint into a teacher must fail";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("student.pt: checkpoint holds a student 5"), std::string::npos)
        << message;
    EXPECT_NE(message.find("but the run builds a teacher complete"), std::string::npos) << message;
  }
  // The round trip itself restores every weight.
  models::MultimodalNet reloaded = load_model(dir / "student.pt", torch::kCPU);
  for (const auto& item : s->named_parameters())
    EXPECT_TRUE(torch::equal(item.value(), reloaded->named_parameters()[item.key()]));
}

TEST(Trainer, NanLossStopsNamingEpochAndBatch) {
  TempDir dir("nan");
  RunConfig config = load_run_config(repo_path("configs/student_5.yaml"), tiny_overrides(1));
  data::MoseiData data = data::load_data(config.data);
  // Values near float's maximum overflow inside the network and make the loss non-finite.
  data.splits["train"].features[0].fill_(3e38);
  models::MultimodalNet model = build_seeded_model(config, input_shape_of(data));
  TaskObjective objective(config.model);
  Trainer trainer(config, RunDir{dir.str()}, model, objective, data);
  try {
    trainer.fit(false);
    FAIL() << "a non-finite loss must stop training";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("epoch 1, batch 1: the loss is"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "best.pt")) << "no good checkpoint to keep";
}

/// Counts the calls and interrupts at the call `stop_at` (1-based).
int g_interrupt_calls = 0;
int g_interrupt_stop_at = 0;
void count_and_interrupt() {
  if (++g_interrupt_calls == g_interrupt_stop_at) throw Interrupted();
}

TEST(Trainer, InterruptCheckStopsBetweenBatchesLeavingTheLastEpochsCheckpoint) {
  TempDir dir("interrupt");
  RunConfig config = load_run_config(repo_path("configs/student_5.yaml"), tiny_overrides(3));
  const data::MoseiData data = data::load_data(config.data);
  const int64_t batches = (data.split("train").size() + 31) / 32;
  ASSERT_GE(batches, 2);
  models::MultimodalNet model = build_seeded_model(config, input_shape_of(data));
  TaskObjective objective(config.model);
  Trainer trainer(config, RunDir{dir.str()}, model, objective, data);
  // The host's check runs before every batch: stop in the middle of the second epoch.
  g_interrupt_calls = 0;
  g_interrupt_stop_at = static_cast<int>(batches + 2);
  set_interrupt_check(count_and_interrupt);
  EXPECT_THROW(trainer.fit(false), Interrupted);
  set_interrupt_check(nullptr);
  EXPECT_EQ(g_interrupt_calls, batches + 2);
  EXPECT_EQ(read_checkpoint_info(dir / "last.pt").epoch, 1) << "last.pt is the first epoch's";
  EXPECT_FALSE(std::filesystem::exists(dir / "metrics.json"));
  check_interrupt();  // removed: nothing happens
}

TEST(Evaluate, DroppedModalitiesChangeTheTeacherButNotTheStudent) {
  RunConfig teacher_config =
      load_run_config(repo_path("configs/teacher_complete.yaml"), tiny_overrides(1));
  RunConfig student_config =
      load_run_config(repo_path("configs/student_5.yaml"), tiny_overrides(1));
  const data::MoseiData data = data::load_data(teacher_config.data);
  const models::InputShape shape = input_shape_of(data);
  models::MultimodalNet teacher = build_seeded_model(teacher_config, shape);
  models::MultimodalNet student = build_seeded_model(student_config, shape);
  const data::Split& test = data.split("test");
  EvalOptions dropped;
  dropped.drop = {data::Modality::kAudio, data::Modality::kText};
  const EvalResult full = evaluate(teacher, test);
  const EvalResult without = evaluate(teacher, test, dropped);
  EXPECT_FALSE(torch::allclose(full.outputs, without.outputs));
  EXPECT_TRUE(
      torch::equal(evaluate(student, test).outputs, evaluate(student, test, dropped).outputs));
  EXPECT_EQ(full.outputs.size(0), test.size());
  // The reported loss is the mean cross-entropy of the outputs against the 7-class labels.
  const torch::Tensor truth = sentiment_to_class(test.labels);
  EXPECT_NEAR(full.loss, torch::nn::functional::cross_entropy(full.outputs, truth).item<double>(),
              1e-5);
}

}  // namespace
}  // namespace mmkd::train
