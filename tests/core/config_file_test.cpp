#include "mmkd/core/config_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
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

namespace mmkd {

std::string load_error(const fs::path& path) {
  try {
    load_config_file(path.string());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigFile, DirectoryOrMalformedIncludeIsNamed) {
  const fs::path dir = temp_dir();
  write(dir / "dir_include.yaml", "include: models\n");
  EXPECT_EQ(load_error(dir / "dir_include.yaml"),
            (dir / "models").string() + ": is a directory, expected a YAML config file");
  write(dir / "bad_list.yaml", "include: [models/x.yaml, {a: 1}]\n");
  EXPECT_EQ(load_error(dir / "bad_list.yaml"),
            (dir / "bad_list.yaml").string() +
                ": 'include' entry 2 is not a file name (the list must hold file names only)");
  fs::remove_all(dir);
}

// A FIFO with no writer would block the read forever; it is refused before it is opened.
TEST(ConfigFile, FifoIsRefusedWithoutBlocking) {
  const fs::path dir = temp_dir();
  ASSERT_EQ(::mkfifo((dir / "pipe.yaml").c_str(), 0600), 0);
  EXPECT_EQ(load_error(dir / "pipe.yaml"),
            (dir / "pipe.yaml").string() + ": is a FIFO (named pipe), expected a YAML config file");
  fs::remove_all(dir);
}

// 40 levels of diamonds: level i's two files both include level i+1's two. Reading each file
// every time it is reached would parse 2^40 files; each is parsed once.
TEST(ConfigFile, DiamondIncludesAreReadOncePerFile) {
  const fs::path dir = temp_dir();
  const int levels = 40;
  for (int i = 0; i < levels; ++i) {
    const std::string next = i + 1 < levels ? "include: [a" + std::to_string(i + 1) + ".yaml, b" +
                                                  std::to_string(i + 1) + ".yaml]\n"
                                            : "";
    for (const char* side : {"a", "b"})
      write(dir / (side + std::to_string(i) + ".yaml"),
            next + "train: {" + side + std::to_string(i) + ": " + std::to_string(i) + "}\n");
  }
  write(dir / "top.yaml", "include: [a0.yaml, b0.yaml]\n");
  const auto start = std::chrono::steady_clock::now();
  const YAML::Node config = load_config_file((dir / "top.yaml").string());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(config["train"]["a39"].as<int>(), 39);
  EXPECT_EQ(config["train"]["b0"].as<int>(), 0);
  EXPECT_EQ(config["train"].size(), 80u);
  fs::remove_all(dir);
}

}  // namespace mmkd
