// Malformed .npy headers: each is an error naming the file, before any allocation.
#include "mmkd/data/npy.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "../support/cli.h"
#include "mmkd/core/error.h"

namespace mmkd::data {
namespace {

/// A version-1 .npy file with `header` (padded as numpy pads it) and `data` after it.
std::string npy_file(const std::string& header, const std::string& data) {
  std::string text = header;
  while ((10 + text.size() + 1) % 64 != 0) text += ' ';
  text += '\n';
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(text.size() & 0xff);
  bytes += static_cast<char>(text.size() >> 8);
  return bytes + text + data;
}

std::string header(const std::string& shape) {
  return "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
}

std::string read_error(const mmkd::testing::TempDir& dir, const std::string& bytes) {
  const std::string path = dir / "x.npy";
  std::ofstream(path, std::ios::binary) << bytes;
  try {
    read_npy(path);
  } catch (const Error& e) {
    // The message with the file's path shortened to "F", so the expectations stay readable.
    const std::string message = e.what();
    return message.rfind(path, 0) == 0 ? "F" + message.substr(path.size()) : message;
  }
  return "";
}

TEST(Npy, ReadsAWellFormedFile) {
  mmkd::testing::TempDir dir("npy_ok");
  const float values[6] = {1, 2, 3, 4, 5, 6};
  const std::string path = dir / "ok.npy";
  std::ofstream(path, std::ios::binary)
      << npy_file(header("(2, 3)"), std::string(reinterpret_cast<const char*>(values), 24));
  const torch::Tensor x = read_npy(path);
  EXPECT_EQ(x.sizes(), torch::IntArrayRef({2, 3}));
  EXPECT_EQ(x[1][2].item<float>(), 6.0f);
  std::ofstream(path, std::ios::binary)
      << npy_file(header("(6,)"), std::string(reinterpret_cast<const char*>(values), 24));
  EXPECT_EQ(read_npy(path).sizes(), torch::IntArrayRef({6}));
}

// Before: "stoll" (no file), a sign silently dropped, a missing comma accepted, and a
// header claiming 4e16 bytes went straight to the allocator.
TEST(Npy, MalformedShapesAreNamedAndNeverAllocated) {
  mmkd::testing::TempDir dir("npy_bad");
  const std::string data(64, '\0');
  EXPECT_EQ(read_error(dir, npy_file(header("(99999999999999999999, 35)"), data)),
            "F: .npy header has a malformed shape (99999999999999999999, 35); expected "
            "non-negative integers");
  EXPECT_EQ(read_error(dir, npy_file(header("(16, -35)"), data)),
            "F: .npy header has a malformed shape (16, -35); expected non-negative integers");
  EXPECT_EQ(read_error(dir, npy_file(header("(16 35)"), data)),
            "F: .npy header has a malformed shape (16 35); expected non-negative integers");
  EXPECT_EQ(read_error(dir, npy_file(header("(100000000, 100000000)"), data)),
            "F: truncated .npy data (its header claims shape [100000000, 100000000], more than "
            "the 64 bytes of data the file holds)");
}

}  // namespace
}  // namespace mmkd::data
