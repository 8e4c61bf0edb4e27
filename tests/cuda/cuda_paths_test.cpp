// The CUDA paths end to end: they run where a GPU is visible (scripts/gpu-check) and skip, saying
// so, everywhere else. Without a GPU, `--device cuda` must fail with a clear message.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "../support/cli.h"
#include "mmkd/core/torch_compat.h"
#include "mmkd/nn/fused_attention.h"
#include "mmkd/nn/multihead_attention.h"
#include "mmkd/nn/transformer_encoder.h"
#include "mmkd/train/adam_step.h"
#include "mmkd/train/bench.h"
#include "mmkd/train/checkpoint.h"
#include "mmkd/train/graphed_step.h"
#include "mmkd/train/run.h"

namespace mmkd::train {
namespace {

using mmkd::testing::repo_path;
using mmkd::testing::run_cli;
using mmkd::testing::TempDir;

#define SKIP_WITHOUT_GPU()                                                                 \
  if (!torch::cuda::is_available())                                                        \
  GTEST_SKIP() << "no GPU visible (LibTorch " << compat::torch_version() << ", CUDA code " \
               << (compat::built_with_cuda() ? "compiled" : "not compiled") << ")"

const std::string kTinySets =
    " --set data.preset=tiny --set model.d_model=8 --set model.layers=1 --set model.heads=2"
    " --set train.epochs=1 --set train.batch_size=32 --set train.progress=false";

/// student (5) at the tiny shapes with every dropout off, so CPU and GPU compute the same.
RunConfig deterministic_student() {
  RunConfig config =
      load_run_config(repo_path("configs/student_5.yaml"),
                      {"data.preset=tiny", "model.d_model=16", "model.layers=2", "model.heads=2",
                       "model.attn_dropout=0", "model.relu_dropout=0", "model.res_dropout=0",
                       "model.embed_dropout=0", "model.out_dropout=0", "train.threads=1"});
  return config;
}

TEST(Cuda, DeviceCudaWithoutAGpuIsAClearError) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "a GPU is visible";
  auto run = run_cli("train --config " + repo_path("configs/student_5.yaml") + kTinySets +
                     " --device cuda --run /tmp/mmkd_no_gpu_run");
  EXPECT_NE(run.status, 0);
  EXPECT_NE(run.output.find("no GPU is visible; use --device cpu"), std::string::npos)
      << run.output;
}

TEST(Cuda, SdpaPathMatchesTheReferenceOnTheGpu) {
  SKIP_WITHOUT_GPU();
  const auto saved = nn::attention_kernel();
  torch::manual_seed(0);
  nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(32, 4));
  mha->eval();
  mha->to(torch::kCUDA);
  const auto q = torch::randn({3, 20, 32}, torch::kCUDA);
  const auto kv = torch::randn({3, 9, 32}, torch::kCUDA);
  auto pad = torch::zeros({3, 9}, torch::TensorOptions().dtype(torch::kBool).device(torch::kCUDA));
  pad[1].slice(0, 0, 5).fill_(true);
  const auto mask = nn::future_mask(20, 9, torch::TensorOptions().device(torch::kCUDA));
  nn::set_attention_kernel(nn::AttentionKernel::kReference);
  const auto ref = mha->forward(q, kv, kv, mask, pad).output;
  nn::set_attention_kernel(nn::AttentionKernel::kFused);  // SDPA on CUDA
  const auto got = mha->forward(q, kv, kv, mask, pad).output;
  nn::set_attention_kernel(saved);
  EXPECT_TRUE(torch::allclose(got, ref, 1e-4, 1e-5)) << (got - ref).abs().max().item<double>();
}

/// Losses of `steps` Adam steps on one fixed batch, on `device`, from the same initial weights.
std::vector<double> losses_on(const torch::Device& device, int steps, bool graphs) {
  const RunConfig config = deterministic_student();
  models::MultimodalNet model = build_seeded_model(config, models::InputShape::tiny());
  model->to(device);
  model->train();
  TaskObjective objective(config.model);
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(1e-3));
  const data::Batch batch = random_batch(model->input_shape(), 16, 1).to(device);
  const auto forward_backward = [&](const data::Batch& b) {
    const models::ModelInputs inputs{b.features, b.padding};
    auto loss = objective.compute(b, model->forward(inputs), true);
    loss.total.backward();
    return loss;
  };
  auto graphed =
      graphs ? make_graphed_train_step(forward_backward, model->parameters(), device) : nullptr;
  std::vector<double> losses;
  for (int i = 0; i < steps; ++i) {
    const LossParts loss = run_train_step(graphed.get(), optimizer, forward_backward, batch);
    losses.push_back(loss.total.item<double>());
    adam_step(optimizer, AdamKernel::kLoop);
  }
  if (graphs) {
    EXPECT_TRUE(graphed && graphed->captured()) << "the step was not captured";
  }
  return losses;
}

TEST(Cuda, FirstTrainStepsAgreeWithTheCpu) {
  SKIP_WITHOUT_GPU();
  const auto cpu = losses_on(torch::kCPU, 4, false);
  const auto gpu = losses_on(torch::kCUDA, 4, false);
  for (size_t i = 0; i < cpu.size(); ++i) EXPECT_NEAR(gpu[i], cpu[i], 1e-4 * (1 + cpu[i])) << i;
}

TEST(Cuda, GraphedTrainStepEqualsTheEagerOne) {
  SKIP_WITHOUT_GPU();
  const auto eager = losses_on(torch::kCUDA, 5, false);
  const auto graphed = losses_on(torch::kCUDA, 5, true);
  for (size_t i = 0; i < eager.size(); ++i) EXPECT_NEAR(graphed[i], eager[i], 1e-5) << i;
}

TEST(Cuda, FusedAdamOnTheGpuEqualsTheLoop) {
  SKIP_WITHOUT_GPU();
  std::vector<torch::Tensor> results;
  for (const auto kernel : {AdamKernel::kLoop, AdamKernel::kFused}) {
    torch::manual_seed(4);
    auto p = torch::randn({64, 8}, torch::kCUDA).requires_grad_(true);
    torch::optim::Adam optimizer({p}, torch::optim::AdamOptions(1e-2).weight_decay(0.01));
    for (int i = 0; i < 5; ++i) {
      p.mutable_grad() = torch::randn({64, 8}, torch::kCUDA);
      adam_step(optimizer, kernel);
    }
    results.push_back(p.detach().cpu());
  }
  EXPECT_TRUE(torch::allclose(results[0], results[1], 1e-5, 1e-6));
}

TEST(Cuda, TrainDistillAndPredictAcrossDevices) {
  SKIP_WITHOUT_GPU();
  TempDir dir("cuda_runs");
  const std::string teacher = dir / "teacher";
  auto t = run_cli("train --config " + repo_path("configs/teacher_complete.yaml") + kTinySets +
                   " --device cuda --run " + teacher);
  ASSERT_EQ(t.status, 0) << t.output;
  // A checkpoint written on the GPU evaluates on the CPU, and the other way round below.
  auto eval_cpu = run_cli("eval --checkpoint " + teacher + "/best.pt --device cpu");
  EXPECT_EQ(eval_cpu.status, 0) << eval_cpu.output;
  for (const std::string config : {"c5_edam_down", "c5_crd_penultimate", "c5_edam_up"}) {
    auto s =
        run_cli("distill --config " + repo_path("configs/table1/" + config + ".yaml") + kTinySets +
                " --teacher " + teacher + " --device cuda --run " + (dir / config));
    EXPECT_EQ(s.status, 0) << config << "\n" << s.output;
  }
  auto cpu_run = run_cli("train --config " + repo_path("configs/student_5.yaml") + kTinySets +
                         " --device cpu --run " + (dir / "student_cpu"));
  ASSERT_EQ(cpu_run.status, 0) << cpu_run.output;
  auto eval_gpu = run_cli("eval --checkpoint " + (dir / "student_cpu") + "/best.pt --device cuda");
  EXPECT_EQ(eval_gpu.status, 0) << eval_gpu.output;
}

TEST(Cuda, BenchReplaysGraphs) {
  SKIP_WITHOUT_GPU();
  TempDir dir("cuda_bench");
  auto b = run_cli(
      "bench --model student:5 --shape tiny --batch 8 --repeats 3 --device cuda "
      "--cuda-graphs --no-ceilings --json " +
      (dir / "b.json"));
  ASSERT_EQ(b.status, 0) << b.output;
  const auto j = nlohmann::json::parse(std::ifstream(dir / "b.json"));
  EXPECT_TRUE(j["train"]["cuda_graph"].get<bool>()) << j.dump();
  EXPECT_GT(j["train"]["peak_device_bytes"].get<int64_t>(), 0);
}

}  // namespace
}  // namespace mmkd::train
