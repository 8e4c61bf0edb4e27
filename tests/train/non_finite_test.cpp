// Non-finite values are never results: a NaN validation or test loss stops the run at the
// first bad batch, naming epoch and batch, before a checkpoint or metrics.json can record it.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "../support/cli.h"
#include "mmkd/core/error.h"
#include "mmkd/train/checkpoint.h"
#include "mmkd/train/run.h"
#include "mmkd/train/trainer.h"

namespace mmkd::train {
namespace {

using mmkd::testing::repo_path;
using mmkd::testing::TempDir;

/// Values near float's maximum overflow inside the network: its outputs become non-finite.
constexpr float kOverflowing = 3e38f;

RunConfig tiny_config(int epochs) {
  return load_run_config(repo_path("configs/student_5.yaml"),
                         {"data.preset=tiny", "model.d_model=8", "model.layers=1", "model.heads=2",
                          "train.batch_size=32", "train.threads=1",
                          "train.epochs=" + std::to_string(epochs), "train.progress=false"});
}

TEST(NonFinite, ValidationNanStopsAtItsEpochAndBatchKeepingTheLastGoodCheckpoint) {
  TempDir dir("nan_valid");
  const RunConfig config = tiny_config(3);
  data::MoseiData data = data::load_data(config.data);
  models::MultimodalNet model = build_seeded_model(config, input_shape_of(data));
  TaskObjective objective(config.model);
  const RunDir paths{dir.str()};
  Trainer trainer(config, paths, model, objective, data);
  trainer.on_epoch = [&](EpochRecord& record) {
    // Epoch 1 is validated; from epoch 2 on the validation data overflow the network.
    if (record.epoch == 1) data.splits["valid"].features[0].fill_(kOverflowing);
  };
  std::string message;
  try {
    trainer.fit(false);
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_EQ(message.rfind("epoch 2, validation, batch 1 of ", 0), 0u) << message;
  EXPECT_NE(message.find("the network's outputs are not finite"), std::string::npos) << message;
  EXPECT_NE(message.find("the last good checkpoint is " + paths.last()), std::string::npos)
      << message;
  // The epoch-1 checkpoints are what is left, and they resume.
  ASSERT_TRUE(std::filesystem::exists(paths.last()));
  EXPECT_EQ(read_checkpoint_info(paths.last()).epoch, 1);
  EXPECT_EQ(read_checkpoint_info(paths.best()).epoch, 1);
  EXPECT_FALSE(std::filesystem::exists(paths.metrics()));
}

TEST(NonFinite, TestNanWritesNoMetrics) {
  TempDir dir("nan_test");
  const RunConfig config = tiny_config(1);
  data::MoseiData data = data::load_data(config.data);
  data.splits["test"].features[0].fill_(kOverflowing);
  models::MultimodalNet model = build_seeded_model(config, input_shape_of(data));
  TaskObjective objective(config.model);
  const RunDir paths{dir.str()};
  Trainer trainer(config, paths, model, objective, data);
  const FitResult fit = trainer.fit(false);
  std::string message;
  try {
    finish_run(config, paths, data, fit);
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_EQ(message.rfind(paths.best() + " on the test split, batch 1 of ", 0), 0u) << message;
  EXPECT_FALSE(std::filesystem::exists(paths.metrics()));
  EXPECT_TRUE(std::filesystem::exists(paths.best()));
}

}  // namespace
}  // namespace mmkd::train
