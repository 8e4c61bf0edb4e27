#include "mmkd/core/yaml_config.h"

#include <gtest/gtest.h>

#include "mmkd/core/error.h"

namespace mmkd {

TEST(YamlConfig, EditDistanceMatchesHandCounts) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("lr", "lr"), 0u);
}

TEST(YamlConfig, UnknownKeySuggestsClosest) {
  const auto node = YAML::Load("{lr: 0.1, epohcs: 3}");
  try {
    check_known_keys(node, {"lr", "epochs", "batch_size"}, "train");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("unknown config key 'train.epohcs'"), std::string::npos) << message;
    EXPECT_NE(message.find("did you mean 'train.epochs'"), std::string::npos) << message;
  }
}

TEST(YamlConfig, WrongTypeNamesKeyAndExpectedType) {
  const auto node = YAML::Load("{lr: fast}");
  double lr = 1e-3;
  try {
    read_optional(node, "lr", "train", lr);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'train.lr': expected a number"), std::string::npos)
        << e.what();
  }
  const auto good = YAML::Load("{lr: 0.5}");
  read_optional(good, "lr", "train", lr);
  EXPECT_DOUBLE_EQ(lr, 0.5);
}

}  // namespace mmkd
