#include "mmkd/core/json_file.h"

#include <gtest/gtest.h>

#include <fstream>

#include "../support/cli.h"
#include "mmkd/core/error.h"

namespace mmkd {
namespace {

TEST(JsonFile, ReadsAFileSaysNothingForAMissingOneAndNamesABrokenOne) {
  testing::TempDir dir("json_file");
  std::ofstream(dir / "good.json") << R"({"latency": {"batch_1": 1.5}})";
  const auto good = read_json_file(dir / "good.json");
  ASSERT_TRUE(good.has_value());
  EXPECT_DOUBLE_EQ((*good)["latency"]["batch_1"].get<double>(), 1.5);
  EXPECT_FALSE(read_json_file(dir / "missing.json").has_value());
  std::ofstream(dir / "broken.json") << R"({"latency": )";
  try {
    read_json_file(dir / "broken.json");
    ADD_FAILURE() << "broken JSON was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir / "broken.json" + ": not valid JSON"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace mmkd
