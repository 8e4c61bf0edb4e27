// Data-parallel runs over c10d/Gloo on this machine's loopback: two ranks train the weights one
// rank trains (same global batch, dropout off), a killed rank stops the run naming it and the
// run resumes, ranks started differently are refused; torchrun's and Slurm's variables parse
// strictly.
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "../support/cli.h"
#include "../support/errors.h"
#include "mmkd/core/error.h"
#include "mmkd/core/torch_compat.h"
#include "mmkd/dist/dist_env.h"
#include "mmkd/dist/local_launcher.h"
#include "mmkd/dist/process_group.h"
#include "mmkd/study/slurm_shard.h"
#include "mmkd/train/checkpoint.h"

namespace mmkd::dist {
namespace {

using mmkd::testing::error_of;
using mmkd::testing::repo_path;
using mmkd::testing::run_cli;
using mmkd::testing::run_command;
using mmkd::testing::TempDir;

std::function<const char*(const char*)> variables(const std::map<std::string, std::string>& vars) {
  return [vars](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(DistEnv, ReadsTorchrunsVariablesStrictly) {
  EXPECT_FALSE(dist_env_from(variables({})).distributed());
  const auto env = dist_env_from(variables({{"RANK", "1"},
                                            {"WORLD_SIZE", "4"},
                                            {"LOCAL_RANK", "1"},
                                            {"MASTER_ADDR", "node7"},
                                            {"MASTER_PORT", "29600"}}));
  EXPECT_TRUE(env.distributed());
  EXPECT_EQ(env.rank, 1);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.master_addr, "node7");
  EXPECT_EQ(env.master_port, 29600);
  EXPECT_NE(error_of([] {
              dist_env_from(variables({{"RANK", "0"}}));
            }).find("RANK is set but WORLD_SIZE is not"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              dist_env_from(variables({{"RANK", "2"}, {"WORLD_SIZE", "2"}}));
            }).find("RANK=2 but WORLD_SIZE=2"),
            std::string::npos);
  EXPECT_NE(
      error_of([] {
        dist_env_from(variables({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "29x"}}));
      }).find("MASTER_PORT='29x'"),
      std::string::npos);
}

TEST(SlurmShard, ArrayTasksBecomeShards) {
  EXPECT_FALSE(study::slurm_array_shard(variables({})).has_value());
  EXPECT_EQ(study::slurm_array_shard(
                variables({{"SLURM_ARRAY_TASK_ID", "0"}, {"SLURM_ARRAY_TASK_COUNT", "4"}})),
            "1/4");
  EXPECT_EQ(study::slurm_array_shard(variables({{"SLURM_ARRAY_TASK_ID", "7"},
                                                {"SLURM_ARRAY_TASK_COUNT", "3"},
                                                {"SLURM_ARRAY_TASK_MIN", "5"}})),
            "3/3");
  EXPECT_NE(error_of([] {
              study::slurm_array_shard(
                  variables({{"SLURM_ARRAY_TASK_ID", "9"}, {"SLURM_ARRAY_TASK_COUNT", "3"}}));
            }).find("outside the array 0..2"),
            std::string::npos);
}

/// Dropout off, tiny data and widths, one thread per rank: the runs below differ only in how
/// many ranks share each global batch.
const std::string kSmall =
    "--set data.preset=tiny --set train.epochs=2 --set model.d_model=8 --set model.layers=1 "
    "--set model.heads=2 --set model.attn_dropout=0 --set model.relu_dropout=0 "
    "--set model.res_dropout=0 --set model.embed_dropout=0 --set train.progress=false "
    "--threads 1";

/// Largest and mean |difference| between the weights of two checkpoints of one architecture.
std::pair<double, double> weight_difference(const std::string& a, const std::string& b) {
  auto left = train::load_model(a, torch::kCPU);
  auto right = train::load_model(b, torch::kCPU);
  const auto theirs = right->named_parameters();
  double worst = 0, sum = 0;
  int64_t count = 0;
  for (const auto& p : left->named_parameters()) {
    const auto diff = (p.value() - theirs[p.key()]).abs();
    worst = std::max(worst, diff.max().item<double>());
    sum += diff.sum().item<double>();
    count += diff.numel();
  }
  return {worst, sum / static_cast<double>(count)};
}

/// Column `column` of log.csv's last row (1 = train_loss, 2 = train_task, 3 = train_kd).
double last_logged(const std::string& run, int column) {
  std::ifstream log(run + "/log.csv");
  std::string line, last;
  while (std::getline(log, line)) last = line;
  std::istringstream row(last);
  std::string field;
  for (int i = 0; i <= column; ++i) std::getline(row, field, ',');
  return std::stod(field);
}

class DistributedTraining : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!gloo_available()) GTEST_SKIP() << "this build has no Gloo headers (libgloo-dev)";
  }
};

TEST_F(DistributedTraining, TwoRanksTrainTheWeightsOfOneRank) {
  TempDir dir("dist_equivalence");
  struct Case {
    std::string name, command;
    double weights;  ///< largest weight difference allowed
    double kd;       ///< relative difference of the logged KD loss allowed
  };
  // Float32 sums in another order (two half-batch means against one mean) through two epochs
  // of Adam, whose steps follow the gradient's sign even where it is ~0: a weight can move by up
  // to one step (lr 1e-3) differently, so the largest difference is held below that and the
  // mean below 1e-6 (measured: at most 4e-5..2e-4, on average 2e-8..2e-7). EDAM's mean over the
  // valid map rows of the whole batch is kept exact across ranks by dist::batch_mean.
  const std::vector<Case> cases = {
      {"teacher", "train --config " + repo_path("configs/teacher_complete.yaml"), 1e-3, 0},
      {"student", "train --config " + repo_path("configs/student_5.yaml"), 1e-3, 0},
      {"edam",
       "distill --config " + repo_path("configs/table1/c5_edam_down.yaml") + " --teacher " +
           dir / "teacher_1",
       1e-3, 1e-5},
      // CRD: negatives drawn for the global batch, Z from its scores, the banks updated with
      // every rank's rows on every rank (the trainer compares the ranks' states each epoch).
      // exp(<v,w>/0.07) magnifies rounding, hence the looser KD tolerance.
      {"crd_penultimate",
       "distill --config " + repo_path("configs/table1/c5_crd_penultimate.yaml") + " --teacher " +
           dir / "teacher_1",
       1e-3, 1e-4},
      {"crd_attention_map",
       "distill --config " + repo_path("configs/table1/c5_crd_attention_map.yaml") +
           " --teacher " + dir / "teacher_1",
       1e-3, 1e-4},
  };
  for (const auto& c : cases) {
    for (const int ranks : {1, 2}) {
      const auto run = dir / (c.name + "_" + std::to_string(ranks));
      const auto result = run_cli(c.command + " --run " + run + " " + kSmall +
                                  (ranks > 1 ? " --nproc 2 --dist-timeout 60" : ""));
      ASSERT_EQ(result.status, 0) << result.output;
      if (ranks > 1) {
        EXPECT_NE(result.output.find("all-reduce:"), std::string::npos) << result.output;
      }
    }
    const auto one = dir / (c.name + "_1"), two = dir / (c.name + "_2");
    const auto [largest, mean] = weight_difference(one + "/best.pt", two + "/best.pt");
    std::cout << c.name << ": weights differ by " << largest << " at most, " << mean
              << " on average\n";
    EXPECT_LT(largest, c.weights) << c.name;
    EXPECT_LT(mean, 1e-6) << c.name;
    EXPECT_NEAR(last_logged(one, 2), last_logged(two, 2), 1e-5) << c.name << ": task loss";
    EXPECT_NEAR(last_logged(one, 3), last_logged(two, 3), c.kd * std::abs(last_logged(one, 3)))
        << c.name << ": KD loss";
    EXPECT_TRUE(std::filesystem::exists(two + "/metrics.json")) << c.name;
  }
}

TEST_F(DistributedTraining, AKilledRankStopsTheRunNamingItAndTheRunResumes) {
  TempDir dir("dist_kill");
  const auto run = dir / "run";
  const std::string train = std::string(MMKD_CLI_PATH) + " train --config " +
                            repo_path("configs/student_5.yaml") + " --run " + run + " " + kSmall +
                            " --set train.epochs=40 --nproc 2 --dist-timeout 30";
  // Rank 1 is killed as soon as the first epoch is logged; the launcher must name it and stop.
  const std::string script =
      "(" + train + " > " + dir / "out.txt" + " 2>&1; echo $? > " + dir / "rc" + ") & " +
      "for i in $(seq 600); do [ -f " + run + "/log.csv ] && break; [ -f " + dir / "rc" +
      " ] && break; sleep 0.1; done; " + "pid=$(sed -n 's/^rank 1: pid //p' " + dir / "out.txt" +
      "); " + "kill -9 $pid; wait; echo killed $pid";
  const auto killed = run_command(script);
  ASSERT_NE(killed.output.find("killed "), std::string::npos) << killed.output;
  std::ifstream rc_file(dir / "rc");
  int rc = -1;
  rc_file >> rc;
  std::ifstream out_file(dir / "out.txt");
  const std::string out((std::istreambuf_iterator<char>(out_file)), {});
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("error: rank 1 (pid"), std::string::npos) << out;
  EXPECT_NE(out.find("was killed by signal 9"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(run + "/metrics.json"));
  ASSERT_TRUE(std::filesystem::exists(run + "/last.pt")) << out;

  const auto resumed = run_cli("train --resume " + run +
                               " --nproc 2 --threads 1 --set "
                               "train.epochs=3 --dist-timeout 30");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming"), std::string::npos) << resumed.output;
  EXPECT_TRUE(std::filesystem::exists(run + "/metrics.json")) << resumed.output;
}

TEST_F(DistributedTraining, RendezvousRefusesRanksStartedWithDifferentConfigs) {
  TempDir dir("dist_mismatch");
  const auto port = std::to_string(free_local_port());
  const auto rank = [&](int r, const std::string& lr) {
    return "RANK=" + std::to_string(r) + " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + port +
           " " + MMKD_CLI_PATH + " train --config " + repo_path("configs/student_5.yaml") +
           " --run " + dir / "run" + " " + kSmall + " --set train.lr=" + lr +
           " --dist-timeout 30 > " + dir / ("out" + std::to_string(r)) + " 2>&1; echo $? > " +
           dir / ("rc" + std::to_string(r));
  };
  run_command("(" + rank(0, "0.001") + ") & (" + rank(1, "0.002") + ") & wait");
  for (int r = 0; r < 2; ++r) {
    std::ifstream out_file(dir / ("out" + std::to_string(r)));
    const std::string out((std::istreambuf_iterator<char>(out_file)), {});
    std::ifstream rc_file(dir / ("rc" + std::to_string(r)));
    int rc = -1;
    rc_file >> rc;
    EXPECT_NE(rc, 0) << out;
    EXPECT_NE(out.find("the ranks were started with different configuration: rank 1"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("lr: 0.002"), std::string::npos) << out;
  }
}

TEST_F(DistributedTraining, TorchrunStartsTheRanks) {
  const std::string torchrun = repo_path(".venv/bin/torchrun");
  if (!std::filesystem::exists(torchrun)) GTEST_SKIP() << "no torchrun in .venv (pip stack)";
  // torchrun's agent hosts the TCPStore, whose protocol changed between PyTorch 1.13 and 2.x: a
  // rank must come from the same PyTorch (docs/scale.md).
  const auto version =
      run_command(repo_path(".venv/bin/python") + " -c 'import torch; print(torch.__version__)'");
  const auto ours = compat::torch_version();
  if (version.output.rfind(ours.substr(0, ours.rfind('.')), 0) != 0) {
    GTEST_SKIP() << "torchrun is PyTorch " << version.output << ", mmkd's LibTorch " << ours;
  }
  TempDir dir("dist_torchrun");
  const auto run = dir / "run";
  const auto result = run_command(torchrun + " --no-python --nproc-per-node 2 -- " + MMKD_CLI_PATH +
                                  " train --config " + repo_path("configs/student_5.yaml") +
                                  " --run " + run + " " + kSmall + " --dist-timeout 60");
  ASSERT_EQ(result.status, 0) << result.output;
  // Rank 0 alone reports and writes; the trainer says it reduced over 2 ranks.
  EXPECT_NE(result.output.find("per step on average over 4 steps, 2 ranks"), std::string::npos)
      << result.output;
  EXPECT_EQ(result.output.find("run " + run + ": test acc7"),
            result.output.rfind("run " + run + ": test acc7"))
      << result.output;
  EXPECT_TRUE(std::filesystem::exists(run + "/metrics.json"));
}

}  // namespace
}  // namespace mmkd::dist
