// Every Table-1 distillation config trains as the code before the KD-term redesign did
// (tests/fixtures/kd_fingerprints.json, one entry per LibTorch version: the two stacks' CPU
// kernels differ). Three Adam steps on tiny data from seeded random teachers, one thread; losses
// and a weight checksum compared to a relative 1e-5. On the recording machine they agree bit for
// bit, but LibTorch picks its CPU kernels by instruction set (AVX2, AVX-512), so another machine
// rounds differently; any change of what is computed moves these values by far more.
// MMKD_RECORD_FINGERPRINTS=FILE writes this build's values into FILE instead (merging). Dropout
// takes LibTorch's kernel here, as the recorded code did (the hashed kernel draws other masks).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "../support/cli.h"
#include "mmkd/core/torch_compat.h"
#include "mmkd/data/batch_loader.h"
#include "mmkd/distill/distill_config.h"
#include "mmkd/distill/distill_objective.h"
#include "mmkd/models/architecture.h"
#include "mmkd/nn/dropout.h"
#include "mmkd/train/run.h"

namespace mmkd::distill {
namespace {

using mmkd::testing::repo_path;

const std::vector<std::string> kRows = {
    "c1_edam_down",         "c2_crd_attention_map", "c2_crd_final",       "c2_crd_penultimate",
    "c3_crd_final",         "c3_crd_penultimate",   "c4_crd_final",       "c4_crd_penultimate",
    "c5_crd_attention_map", "c5_crd_final",         "c5_crd_penultimate", "c5_crd_post_attention",
    "c5_edam_down",         "c5_edam_up",           "c5_ideal_map"};

std::vector<std::string> fingerprint_overrides() {
  return {"data.preset=tiny",
          "model.d_model=8",
          "model.layers=1",
          "model.heads=2",
          "train.threads=1",
          "distill.crd.num_negatives=16",
          "distill.crd.row_negatives=8"};
}

std::string version_key() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR);
}

/// Losses of three steps and the final weights' checksum of one Table-1 row.
nlohmann::json fingerprint(const std::string& row) {
  torch::set_num_threads(1);
  nn::set_dropout_kernel(nn::DropoutKernel::kTorch);
  const train::RunConfig config =
      train::load_run_config(repo_path("configs/table1/" + row + ".yaml"), fingerprint_overrides());
  const DistillConfig distill = parse_distill_config(config.distill, "distill");
  const data::MoseiData data = data::load_data(config.data);
  const models::InputShape shape = train::input_shape_of(data);
  models::MultimodalNet student = train::build_seeded_model(config, shape);
  train::RunConfig teacher_config = config;
  teacher_config.model.role = models::Role::kTeacher;
  teacher_config.model.teacher_arch = resolve_pairing(distill, config.model).teacher;
  teacher_config.train.seed = config.train.seed + 17;
  models::MultimodalNet teacher = train::build_seeded_model(teacher_config, shape);
  torch::manual_seed(static_cast<uint64_t>(config.train.seed));
  DistillObjective objective(distill, student, teacher, data.split("train"), 0);
  std::vector<torch::Tensor> params = student->parameters();
  for (auto& p : objective.parameters()) params.push_back(p);
  torch::optim::Adam optimizer(params, torch::optim::AdamOptions(1e-3));
  data::BatchLoaderOptions options;
  options.batch_size = 32;
  data::BatchLoader loader(data.split("train"), options);
  student->train();
  objective.set_training(true);
  nlohmann::json losses = nlohmann::json::array();
  for (int64_t i = 0; i < 3; ++i) {
    const data::Batch batch = loader.batch(i);
    compat::zero_grad_in_place(optimizer);
    const auto out = student->forward({batch.features, batch.padding}, objective.taps());
    const auto loss = objective.compute(batch, out, true);
    loss.total.backward();
    torch::nn::utils::clip_grad_norm_(student->parameters(), 0.8);
    const auto heads = objective.parameters();
    if (!heads.empty()) torch::nn::utils::clip_grad_norm_(heads, 0.8);
    optimizer.step();
    losses.push_back(loss.total.item<double>());
    losses.push_back(loss.task.item<double>());
  }
  double checksum = 0;
  for (const auto& p : params) checksum += p.detach().to(torch::kDouble).abs().sum().item<double>();
  return {{"losses", losses}, {"weights", checksum}};
}

/// Relative agreement that survives another CPU's rounding (see the top of the file).
constexpr double kRelativeTolerance = 1e-5;

void expect_number_close(double got, double expected, const std::string& what) {
  EXPECT_NEAR(got, expected, kRelativeTolerance * std::max(1.0, std::abs(expected))) << what;
}

class KdFingerprint : public ::testing::TestWithParam<std::string> {};

TEST_P(KdFingerprint, TrainsAsBeforeTheRedesign) {
  const std::string row = GetParam();
  const nlohmann::json got = fingerprint(row);
  if (const char* out = std::getenv("MMKD_RECORD_FINGERPRINTS")) {
    nlohmann::json all = nlohmann::json::object();
    if (std::filesystem::exists(out)) all = nlohmann::json::parse(std::ifstream(out));
    all[version_key()][row] = got;
    std::ofstream(out) << all.dump(1) << "\n";
    GTEST_SKIP() << "recorded into " << out;
  }
  const auto expected_all =
      nlohmann::json::parse(std::ifstream(repo_path("tests/fixtures/kd_fingerprints.json")));
  if (!expected_all.contains(version_key())) {
    GTEST_SKIP() << "no fingerprints recorded for LibTorch " << version_key();
  }
  const auto& expected = expected_all.at(version_key()).at(row);
  ASSERT_EQ(got["losses"].size(), expected["losses"].size());
  for (size_t i = 0; i < got["losses"].size(); ++i) {
    expect_number_close(got["losses"][i].get<double>(), expected["losses"][i].get<double>(),
                        row + ", value " + std::to_string(i) + " (step " +
                            std::to_string(i / 2 + 1) + (i % 2 ? ", L_c)" : ", total)"));
  }
  expect_number_close(got["weights"].get<double>(), expected["weights"].get<double>(),
                      row + ", weight checksum");
}

INSTANTIATE_TEST_SUITE_P(Table1, KdFingerprint, ::testing::ValuesIn(kRows),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace mmkd::distill
