#include "mmkd/core/config_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "mmkd/core/error.h"

namespace mmkd {
namespace fs = std::filesystem;

namespace {
fs::path temp_dir() {
  const fs::path dir = fs::temp_directory_path() / ("mmkd_config_test_" + std::to_string(getpid()));
  fs::create_directories(dir / "models");
  return dir;
}
void write(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }
}  // namespace

TEST(ConfigFile, IncludesAreMergedAndTheIncludingFileWins) {
  const fs::path dir = temp_dir();
  write(dir / "models" / "base.yaml", "model: {d_model: 40, layers: 4}\ntrain: {lr: 0.001}\n");
  write(dir / "run.yaml", "include: models/base.yaml\nmodel: {layers: 2}\ntrain: {epochs: 3}\n");
  const YAML::Node config = load_config_file((dir / "run.yaml").string());
  EXPECT_EQ(config["model"]["d_model"].as<int>(), 40);
  EXPECT_EQ(config["model"]["layers"].as<int>(), 2);
  EXPECT_DOUBLE_EQ(config["train"]["lr"].as<double>(), 0.001);
  EXPECT_EQ(config["train"]["epochs"].as<int>(), 3);
  EXPECT_FALSE(config["include"]);
  fs::remove_all(dir);
}

TEST(ConfigFile, IncludeCycleAndMissingFileAreNamed) {
  const fs::path dir = temp_dir();
  write(dir / "a.yaml", "include: b.yaml\n");
  write(dir / "b.yaml", "include: a.yaml\n");
  EXPECT_THROW(load_config_file((dir / "a.yaml").string()), Error);
  try {
    load_config_file((dir / "missing.yaml").string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.yaml: no such config file"), std::string::npos);
  }
  fs::remove_all(dir);
}

TEST(ConfigFile, OverridesKeepYamlTypesAndCreatePaths) {
  YAML::Node root = YAML::Load("train: {lr: 0.001}\n");
  apply_overrides(
      root, {"train.lr=5e-4", "train.epochs=7", "distill.method.name=edam", "model.readout=mean"});
  EXPECT_DOUBLE_EQ(root["train"]["lr"].as<double>(), 5e-4);
  EXPECT_EQ(root["train"]["epochs"].as<int>(), 7);
  EXPECT_EQ(root["distill"]["method"]["name"].as<std::string>(), "edam");
  EXPECT_EQ(root["model"]["readout"].as<std::string>(), "mean");
  EXPECT_THROW(apply_override(root, "no_equals_sign"), Error);
  EXPECT_THROW(apply_override(root, "train..lr=1"), Error);
}

}  // namespace mmkd
