#include "mmkd/core/atomic_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "mmkd/core/error.h"

namespace mmkd {

namespace {

namespace fs = std::filesystem;

/// A fresh empty directory per test, removed afterwards.
class AtomicFile : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("mmkd_atomic_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename());
    return names;
  }

  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  }

  fs::path dir_;
};

}  // namespace

TEST_F(AtomicFile, WritesContentAndLeavesNoTemp) {
  const std::string path = (dir_ / "metrics.json").string();
  write_text_atomic(path, "{\"acc7\": 0.5}\n");
  EXPECT_EQ(read(path), "{\"acc7\": 0.5}\n");
  EXPECT_EQ(entries(), std::vector<std::string>({"metrics.json"}));
}

TEST_F(AtomicFile, WriterGetsTempPathInSameDirectory) {
  const std::string path = (dir_ / "model.pt").string();
  std::string seen;
  write_file_atomic(path, [&](const std::string& tmp) {
    seen = tmp;
    std::ofstream(tmp) << "weights";
  });
  EXPECT_EQ(seen, path + ".tmp-" + std::to_string(::getpid()));
  EXPECT_EQ(read(path), "weights");
  EXPECT_FALSE(fs::exists(seen));
}

TEST_F(AtomicFile, ThrowingWriterLeavesNoFileAndNoTemp) {
  const std::string path = (dir_ / "best.pt").string();
  EXPECT_THROW(write_file_atomic(path,
                                 [](const std::string& tmp) {
                                   std::ofstream(tmp) << "half a checkp";
                                   throw std::runtime_error("disk on fire");
                                 }),
               std::runtime_error);
  EXPECT_TRUE(entries().empty());
}

TEST_F(AtomicFile, ThrowingWriterKeepsTheOldFile) {
  const std::string path = (dir_ / "last.pt").string();
  write_text_atomic(path, "old");
  EXPECT_THROW(write_file_atomic(path,
                                 [](const std::string& tmp) {
                                   std::ofstream(tmp) << "new but broken";
                                   throw Error("serialisation failed");
                                 }),
               Error);
  EXPECT_EQ(read(path), "old");
  EXPECT_EQ(entries(), std::vector<std::string>({"last.pt"}));
}

TEST_F(AtomicFile, WriterThatWritesNothingIsAnError) {
  const std::string path = (dir_ / "empty.json").string();
  EXPECT_THROW(write_file_atomic(path, [](const std::string&) {}), Error);
  EXPECT_TRUE(entries().empty());
}

TEST_F(AtomicFile, ExistingFileIsReplacedWhole) {
  const std::string path = (dir_ / "log.txt").string();
  write_text_atomic(path, std::string(10000, 'x'));
  write_text_atomic(path, "short");
  EXPECT_EQ(read(path), "short");  // no tail of the longer old content
  EXPECT_EQ(fs::file_size(path), 5u);
  EXPECT_EQ(entries(), std::vector<std::string>({"log.txt"}));
}

TEST_F(AtomicFile, MissingDirectoryIsAnError) {
  EXPECT_THROW(write_text_atomic((dir_ / "no_such_dir" / "x.txt").string(), "x"), Error);
}

}  // namespace mmkd
