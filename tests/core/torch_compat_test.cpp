// The LibTorch compatibility layer: version, autocast on and off around a region.
#include "mmkd/core/torch_compat.h"

#include <gtest/gtest.h>

namespace mmkd::compat {
namespace {

TEST(TorchCompat, VersionIsTheHeadersOne) {
  const std::string version = torch_version();
  EXPECT_EQ(version.rfind(
                std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR), 0),
            0u)
      << version;
  EXPECT_EQ(has_sdpa(), TORCH_VERSION_MAJOR >= 2);
}

TEST(TorchCompat, AutocastGuardCastsInsideAndRestoresAfter) {
  const auto a = torch::randn({4, 4}), b = torch::randn({4, 4});
  ASSERT_FALSE(autocast_enabled(torch::kCPU));
  {
    const AutocastGuard guard(torch::kCPU, torch::kBFloat16);
    EXPECT_TRUE(autocast_enabled(torch::kCPU));
    EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kBFloat16);
  }
  EXPECT_FALSE(autocast_enabled(torch::kCPU));
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat32);
  {
    const AutocastGuard off(torch::kCPU, c10::nullopt);
    EXPECT_FALSE(autocast_enabled(torch::kCPU));
  }
}

}  // namespace
}  // namespace mmkd::compat
