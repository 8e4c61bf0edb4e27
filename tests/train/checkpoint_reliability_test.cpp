// Checkpoints on real machines: a full disk while saving, bytes flipped after saving, weights
// that are not finite. Each failure is one mmkd::Error naming the file; the previous
// checkpoint stays byte-identical and loadable.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "../support/cli.h"
#include "../support/errors.h"
#include "../support/full_disk.h"
#include "../support/temp_files.h"
#include "mmkd/core/error.h"
#include "mmkd/train/checkpoint.h"
#include "mmkd/train/run.h"

namespace mmkd::train {
namespace {

using mmkd::testing::error_of;
using mmkd::testing::repo_path;
using mmkd::testing::TempDir;

std::string checkpoint_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

/// A tiny student and the info that rebuilds it.
struct TinyNet {
  TinyNet() {
    const RunConfig config =
        load_run_config(repo_path("configs/student_5.yaml"),
                        {"data.preset=tiny", "model.d_model=8", "model.layers=1", "model.heads=2"});
    model = build_seeded_model(config, models::InputShape::tiny());
    info.config_yaml = YAML::Dump(config.resolved());
    info.shape = models::InputShape::tiny();
  }
  /// Changes every weight, so that a second save has other bytes than the first.
  void perturb() {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.add_(0.25);
  }
  models::MultimodalNet model{nullptr};
  CheckpointInfo info;
};

size_t checkpoint_size(TinyNet& net) {
  TempDir dir("ckpt_size");
  save_checkpoint(dir / "probe.pt", net.model, net.info);
  return std::filesystem::file_size(dir / "probe.pt");
}

// LibTorch's file writer threw from its destructor here (std::terminate): the test process
// itself would have died.
TEST(CheckpointReliability, SaveOnAFullDiskFailsCleanlyAndKeepsTheOldCheckpoint) {
  TinyNet net;
  const size_t size = checkpoint_size(net);
  // Room for one checkpoint but not for the temporary second copy beside it.
  const testing::SmallTmpfs disk(size + size / 2 + 4096);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs CAP_SYS_ADMIN)";
  const std::string path = disk / "last.pt";
  save_checkpoint(path, net.model, net.info);
  const std::string before = checkpoint_bytes(path);
  net.perturb();
  const std::string message = error_of([&] { save_checkpoint(path, net.model, net.info); });
  EXPECT_NE(message.find("cannot write '" + path + "': no space left on device"), std::string::npos)
      << message;
  EXPECT_EQ(checkpoint_bytes(path), before);
  EXPECT_TRUE(testing::temp_files_of(path).empty());
  EXPECT_NO_THROW(load_model(path, torch::kCPU));  // still resumable
}

// The same failure injected where no tmpfs can be mounted: the file size limit (EFBIG).
TEST(CheckpointReliability, FailedWriteByFileSizeLimitKeepsTheOldCheckpoint) {
  TinyNet net;
  TempDir dir("ckpt_fsize");
  const std::string path = dir / "best.pt";
  save_checkpoint(path, net.model, net.info);
  const std::string before = checkpoint_bytes(path);
  net.perturb();
  std::string message;
  {
    const testing::FileSizeLimit limit(before.size() / 2);
    message = error_of([&] { save_checkpoint(path, net.model, net.info); });
  }
  EXPECT_NE(message.find("cannot write '" + path + "': file too large"), std::string::npos)
      << message;
  EXPECT_EQ(checkpoint_bytes(path), before);
  EXPECT_TRUE(testing::temp_files_of(path).empty());
}

// LibTorch 1.13 loads such a file silently (its miniz skips CRCs): the weight is just wrong.
TEST(CheckpointReliability, FlippedByteInATensorIsRefusedNamingTheFile) {
  TinyNet net;
  TempDir dir("ckpt_flip");
  const std::string path = dir / "best.pt";
  save_checkpoint(path, net.model, net.info);
  std::string bytes = checkpoint_bytes(path);
  // Find the first parameter's raw float data inside its record and flip one bit of it.
  const torch::Tensor first = net.model->parameters().front().contiguous();
  const std::string raw(static_cast<const char*>(first.data_ptr()),
                        std::min<size_t>(first.nbytes(), 32));
  const size_t at = bytes.find(raw);
  ASSERT_NE(at, std::string::npos) << "the parameter's bytes are not stored verbatim";
  bytes[at + 5] = static_cast<char>(bytes[at + 5] ^ 0x10);
  write_bytes(path, bytes);
  const std::string message = error_of([&] { load_model(path, torch::kCPU); });
  EXPECT_NE(message.find(path + ": damaged checkpoint: record '"), std::string::npos) << message;
  EXPECT_NE(message.find("fails its CRC check"), std::string::npos) << message;
}

// LibTorch deflates its code records; their CRC covers the inflated bytes.
TEST(CheckpointReliability, FlippedByteInADeflatedRecordIsRefused) {
  TinyNet net;
  TempDir dir("ckpt_deflate");
  const std::string path = dir / "best.pt";
  save_checkpoint(path, net.model, net.info);
  std::string bytes = checkpoint_bytes(path);
  const std::string name = "archive/code/__torch__.py";
  const size_t at = bytes.find(name);  // the first occurrence is the record's local header
  ASSERT_NE(at, std::string::npos);
  ASSERT_GE(at, 30u);
  const size_t extra = static_cast<uint8_t>(bytes[at - 2]) | static_cast<uint8_t>(bytes[at - 1])
                                                                 << 8;
  ASSERT_EQ(static_cast<uint8_t>(bytes[at - 30 + 8]), 8) << "the record is no longer deflated";
  bytes[at + name.size() + extra + 1] ^= 0x01;
  write_bytes(path, bytes);
  const std::string message = error_of([&] { load_model(path, torch::kCPU); });
  EXPECT_EQ(message.rfind(path + ": damaged checkpoint", 0), 0u) << message;
  EXPECT_NE(message.find("'" + name + "' fails its CRC check"), std::string::npos) << message;
}

TEST(CheckpointReliability, TruncatedCheckpointIsRefusedNamingTheFile) {
  TinyNet net;
  TempDir dir("ckpt_cut");
  const std::string path = dir / "last.pt";
  save_checkpoint(path, net.model, net.info);
  const std::string bytes = checkpoint_bytes(path);
  write_bytes(path, bytes.substr(0, bytes.size() * 2 / 3));
  const std::string message = error_of([&] { read_checkpoint_info(path); });
  EXPECT_EQ(message.rfind(path + ": damaged checkpoint", 0), 0u) << message;
}

TEST(CheckpointReliability, NonFiniteWeightIsRefusedNamingTheFileAndTensor) {
  TinyNet net;
  TempDir dir("ckpt_nan");
  const std::string path = dir / "best.pt";
  {
    torch::NoGradGuard no_grad;
    net.model->named_parameters().begin()->value().view(-1)[0] = NAN;
  }
  const std::string name = net.model->named_parameters().begin()->key();
  save_checkpoint(path, net.model, net.info);
  const std::string message = error_of([&] { load_model(path, torch::kCPU); });
  EXPECT_NE(message.find(path + ": parameter '" + name + "' holds non-finite values"),
            std::string::npos)
      << message;
}

}  // namespace
}  // namespace mmkd::train
