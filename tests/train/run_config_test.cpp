// Run config values that parse but cannot be right: non-finite or float-overflowing numbers,
// thread counts far above the cores.
#include "mmkd/train/run_config.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "../support/cli.h"
#include "mmkd/core/error.h"
#include "mmkd/data/data_config.h"

namespace mmkd::train {
namespace {

std::string config_error(const std::vector<std::string>& overrides) {
  try {
    load_run_config(testing::repo_path("configs/student_5.yaml"), overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(RunConfig, NonFiniteAndOverflowingNumbersNameTheKey) {
  for (const std::string value : {".inf", "-.inf", ".nan", "1e300", "-1e39"}) {
    const std::string message = config_error({"train.lr=" + value});
    EXPECT_NE(message.find("config key 'train.lr': expected a finite number within float32 range"),
              std::string::npos)
        << value << ": " << message;
    EXPECT_NE(message.find("student_5.yaml"), std::string::npos) << message;
  }
  EXPECT_NE(config_error({"train.clip=.inf"}).find("config key 'train.clip'"), std::string::npos);
  EXPECT_EQ(config_error({"train.lr=3e38"}), "");  // large, but a float
}

TEST(RunConfig, ThreadsFarAboveTheCoresAreRefused) {
  const int64_t cores = std::max(1u, std::thread::hardware_concurrency());
  const std::string message = config_error({"train.threads=100000"});
  EXPECT_NE(
      message.find("config key 'train.threads': 100000 threads on a machine with " +
                   std::to_string(cores) + " cores; use at most " + std::to_string(4 * cores)),
      std::string::npos)
      << message;
  EXPECT_EQ(config_error({"train.threads=" + std::to_string(cores)}), "");
}

// An empty synthetic split used to fail inside batching ("cannot batch an empty split").
TEST(RunConfig, EmptySyntheticSplitNamesTheKey) {
  const RunConfig config = load_run_config(testing::repo_path("configs/student_5.yaml"),
                                           {"data.preset=tiny", "data.synth.n_valid=0"});
  try {
    data::load_data(config.data);
    FAIL() << "a run cannot validate on zero samples";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "config key 'data.synth.n_valid': expected at least 1 sample, got 0");
  }
}

}  // namespace
}  // namespace mmkd::train
