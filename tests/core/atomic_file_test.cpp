#include "mmkd/core/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "../support/full_disk.h"
#include "../support/temp_files.h"
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

TEST_F(AtomicFile, TempFileIsFreshUnpredictableAndInTheSameDirectory) {
  const std::string path = (dir_ / "model.pt").string();
  std::vector<std::string> seen;
  for (int i = 0; i < 2; ++i) {
    write_file_atomic(path, [&](AtomicOutput& out) {
      seen.push_back(out.temp_path());
      EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(out.temp_path())));
      out.write("weights");
    });
  }
  const std::string prefix = path + ".tmp-";
  for (const auto& temp : seen) {
    EXPECT_EQ(temp.rfind(prefix, 0), 0u) << temp;
    EXPECT_EQ(temp.find(std::to_string(::getpid()), prefix.size()), std::string::npos) << temp;
  }
  EXPECT_NE(seen[0], seen[1]);
  EXPECT_EQ(read(path), "weights");
  EXPECT_EQ(entries(), std::vector<std::string>({"model.pt"}));
}

TEST_F(AtomicFile, ModeIs0644LessTheUmask) {
  const mode_t saved = ::umask(027);
  write_text_atomic((dir_ / "a.json").string(), "{}");
  ::umask(saved);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "a.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

// Another user of a shared directory plants a link where the old code put its temporary file
// (path + ".tmp-<pid>"): the write must neither follow it nor disturb it.
TEST_F(AtomicFile, SymlinkPlantedAtThePredictableNameIsNotFollowed) {
  const fs::path victim = dir_ / "victim.txt";
  std::ofstream(victim) << "precious";
  const std::string path = (dir_ / "metrics.json").string();
  const std::string planted = path + ".tmp-" + std::to_string(::getpid());
  fs::create_symlink(victim, planted);
  write_text_atomic(path, "{\"acc7\": 0.5}\n");
  EXPECT_EQ(read(victim), "precious");
  EXPECT_EQ(read(path), "{\"acc7\": 0.5}\n");
  EXPECT_TRUE(fs::is_symlink(fs::symlink_status(planted)));
  EXPECT_EQ(fs::read_symlink(planted), victim);
}

TEST_F(AtomicFile, FilePreCreatedAtThePredictableNameIsLeftAlone) {
  const std::string path = (dir_ / "log.csv").string();
  const std::string planted = path + ".tmp-" + std::to_string(::getpid());
  std::ofstream(planted) << "theirs";
  write_text_atomic(path, "ours");
  EXPECT_EQ(read(planted), "theirs");
  EXPECT_EQ(read(path), "ours");
}

// A link at the target itself is replaced by the new file, never written through.
TEST_F(AtomicFile, SymlinkAtTheTargetIsReplacedNotFollowed) {
  const fs::path victim = dir_ / "victim.txt";
  std::ofstream(victim) << "precious";
  const fs::path path = dir_ / "best.pt";
  fs::create_symlink(victim, path);
  write_text_atomic(path.string(), "weights");
  EXPECT_EQ(read(victim), "precious");
  EXPECT_FALSE(fs::is_symlink(fs::symlink_status(path)));
  EXPECT_EQ(read(path), "weights");
}

TEST_F(AtomicFile, ThrowingWriterLeavesNoFileAndNoTemp) {
  const std::string path = (dir_ / "best.pt").string();
  EXPECT_THROW(write_file_atomic(path,
                                 [](AtomicOutput& out) {
                                   out.write("half a checkp");
                                   throw std::runtime_error("disk on fire");
                                 }),
               std::runtime_error);
  EXPECT_TRUE(entries().empty());
}

TEST_F(AtomicFile, ThrowingWriterKeepsTheOldFile) {
  const std::string path = (dir_ / "last.pt").string();
  write_text_atomic(path, "old");
  EXPECT_THROW(write_file_atomic(path,
                                 [](AtomicOutput& out) {
                                   out.write("new but broken");
                                   throw Error("serialisation failed");
                                 }),
               Error);
  EXPECT_EQ(read(path), "old");
  EXPECT_EQ(entries(), std::vector<std::string>({"last.pt"}));
}

TEST_F(AtomicFile, EmptyTextMakesAnEmptyFile) {
  const std::string path = (dir_ / "empty.txt").string();
  write_text_atomic(path, "");
  EXPECT_TRUE(fs::exists(path));
  EXPECT_EQ(fs::file_size(path), 0u);
  EXPECT_EQ(entries(), std::vector<std::string>({"empty.txt"}));
}

// An injected write failure any user can cause: the file size limit (EFBIG).
TEST_F(AtomicFile, FailedWriteIsOneErrorKeepsTheOldFileAndLeavesNoTemp) {
  const std::string path = (dir_ / "last.pt").string();
  write_text_atomic(path, "old checkpoint");
  std::string message;
  {
    const testing::FileSizeLimit limit(4096);
    try {
      write_text_atomic(path, std::string(100000, 'x'));
    } catch (const Error& e) {
      message = e.what();
    }
  }
  EXPECT_NE(message.find("cannot write '" + path + "': file too large"), std::string::npos)
      << message;
  EXPECT_EQ(read(path), "old checkpoint");
  EXPECT_EQ(entries(), std::vector<std::string>({"last.pt"}));
}

TEST_F(AtomicFile, FullDiskIsOneErrorNamingThePath) {
  const testing::SmallTmpfs disk(64 * 1024);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs CAP_SYS_ADMIN)";
  const std::string path = disk / "metrics.json";
  write_text_atomic(path, "old results");
  try {
    write_text_atomic(path, std::string(1 << 20, 'x'));
    ADD_FAILURE() << "a 1 MiB write onto a 64 KiB tmpfs succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot write '" + path + "': no space left on device"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(read(path), "old results");
  EXPECT_TRUE(testing::temp_files_of(path).empty());
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
