// The hashed element-wise dropout: its mask against the hash written out by hand, the output and
// the gradient against that mask, the drop rate, thread independence and the fallbacks.
#include "mmkd/nn/dropout.h"

#include <gtest/gtest.h>

#include <cmath>

#include "../support/errors.h"

namespace mmkd::nn {
namespace {

using mmkd::testing::error_of;

/// Element i's keep decision, spelled out from dropout_hash.h's definition: row i / 1024,
/// column i % 1024, SplitMix64 for the row key, lowbias32 for the column.
bool reference_keep(uint64_t seed, int64_t i, double p) {
  auto mix = [](uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  const uint64_t key = mix(seed ^ mix(static_cast<uint64_t>(i / 1024)));
  uint32_t x = (static_cast<uint32_t>(key) + static_cast<uint32_t>(i % 1024) * 0x9E3779B9u) ^
               static_cast<uint32_t>(key >> 32);
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x >= static_cast<uint32_t>(p * 4294967296.0);
}

/// Restores the process-wide kernel and thread count a test changes.
class DropoutTest : public ::testing::Test {
 protected:
  void TearDown() override {
    set_dropout_kernel(DropoutKernel::kHashed);
    torch::set_num_threads(threads_);
  }
  int threads_ = torch::get_num_threads();
};

TEST_F(DropoutTest, MaskIsTheHashOfSeedAndIndex) {
  const int64_t n = 5000;  // four full rows of 1024 and a partial one
  const auto keep = hashed_dropout_keep(42, n, 0.3);
  ASSERT_EQ(keep.numel(), n);
  const auto* k = keep.data_ptr<bool>();
  int64_t mismatches = 0;
  for (int64_t i = 0; i < n; ++i) mismatches += k[i] != reference_keep(42, i, 0.3);
  EXPECT_EQ(mismatches, 0);
}

TEST_F(DropoutTest, OutputAndGradientApplyOneMask) {
  torch::manual_seed(0);
  const double p = 0.25;
  const auto x = torch::randn({3, 50, 70}).requires_grad_(true);  // 10500 elements
  const auto w = torch::randn({3, 50, 70});
  const auto out = hashed_dropout(x, p, 7);
  const auto keep = hashed_dropout_keep(7, x.numel(), p).view(x.sizes());
  const auto expected = torch::where(keep, x.detach() / (1 - p), torch::zeros_like(x));
  EXPECT_TRUE(torch::allclose(out, expected, 1e-6, 0)) << (out - expected).abs().max();
  (out * w).sum().backward();
  const auto expected_grad = torch::where(keep, w / (1 - p), torch::zeros_like(w));
  EXPECT_TRUE(torch::allclose(x.grad(), expected_grad, 1e-6, 0));
}

TEST_F(DropoutTest, DropsAShareP) {
  const int64_t n = int64_t(1) << 20;
  for (const double p : {0.1, 0.25, 0.5}) {
    const double dropped =
        1.0 - hashed_dropout_keep(3, n, p).to(torch::kDouble).mean().item<double>();
    // Five binomial standard deviations: a wrong threshold or a stuck bit moves it by far more.
    EXPECT_NEAR(dropped, p, 5 * std::sqrt(p * (1 - p) / static_cast<double>(n))) << "p " << p;
  }
  // Rows and seeds draw independent masks: two masks agree on p^2 + (1-p)^2 of their elements.
  const auto a = hashed_dropout_keep(3, 2048, 0.5);
  const auto b = hashed_dropout_keep(4, 2048, 0.5);
  const double rows =
      (a.slice(0, 0, 1024) == a.slice(0, 1024)).to(torch::kDouble).mean().item<double>();
  const double seeds = (a == b).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(rows, 0.5, 0.08);
  EXPECT_NEAR(seeds, 0.5, 0.06);
  // Neighbours within a row are independent too: both kept with probability (1-p)^2.
  const int64_t m = int64_t(1) << 20;
  const auto keep = hashed_dropout_keep(9, m, 0.5);
  const double both =
      (keep.slice(0, 0, m - 1) & keep.slice(0, 1)).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(both, 0.25, 5 * std::sqrt(0.25 * 0.75 / static_cast<double>(m)));
}

TEST_F(DropoutTest, SameMaskOnAnyThreadCountAndLayout) {
  torch::manual_seed(1);
  const auto x = torch::randn({64, 48, 64});
  torch::set_num_threads(1);
  const auto one = hashed_dropout(x, 0.1, 11);
  torch::set_num_threads(2);
  const auto two = hashed_dropout(x, 0.1, 11);
  EXPECT_TRUE(torch::equal(one, two));
  // A strided input is read in its logical (row-major) order.
  const auto t = x.transpose(0, 2);
  EXPECT_TRUE(torch::equal(hashed_dropout(t, 0.1, 11), hashed_dropout(t.contiguous(), 0.1, 11)));
  EXPECT_TRUE(torch::equal(hashed_dropout(x, 0.0, 11), x));
}

TEST_F(DropoutTest, DropoutDrawsItsSeedFromTheDefaultGenerator) {
  const auto x = torch::randn({32, 100});
  EXPECT_TRUE(apply_dropout(x, 0.0, true).is_same(x));
  EXPECT_TRUE(apply_dropout(x, 0.5, false).is_same(x));
  torch::manual_seed(5);
  const auto first = apply_dropout(x, 0.5, true);
  const auto second = apply_dropout(x, 0.5, true);
  torch::manual_seed(5);
  EXPECT_TRUE(torch::equal(apply_dropout(x, 0.5, true), first));
  EXPECT_FALSE(torch::equal(first, second));
  const auto kept = first != 0;
  EXPECT_TRUE(torch::allclose(first.masked_select(kept), (x * 2).masked_select(kept)));
}

TEST_F(DropoutTest, TorchKernelAndOtherTensorsTakeLibTorchsDropout) {
  const auto x = torch::rand({4000}) + 1;  // no zeros of its own
  set_dropout_kernel(DropoutKernel::kTorch);
  EXPECT_STREQ(dropout_kernel_name(dropout_kernel()), "torch");
  torch::manual_seed(5);
  const auto by_torch = apply_dropout(x, 0.5, true);
  set_dropout_kernel(DropoutKernel::kHashed);
  torch::manual_seed(5);
  const auto hashed = apply_dropout(x, 0.5, true);
  EXPECT_FALSE(torch::equal(by_torch == 0, hashed == 0));
  torch::manual_seed(5);
  EXPECT_TRUE(torch::equal(by_torch, torch::dropout(x, 0.5, true)));
  // float64 has no hashed kernel: LibTorch's, with its scaling.
  const auto d = apply_dropout(x.to(torch::kDouble), 0.5, true);
  const auto kept = d != 0;
  EXPECT_TRUE(
      torch::allclose(d.masked_select(kept), (x.to(torch::kDouble) * 2).masked_select(kept)));
}

TEST_F(DropoutTest, RefusesBadProbabilityAndTensors) {
  auto message = error_of([] { hashed_dropout(torch::ones({4}), 1.0, 0); });
  EXPECT_NE(message.find("hashed_dropout: p must be in [0,1), got 1"), std::string::npos)
      << message;
  message = error_of([] { hashed_dropout(torch::ones({4}, torch::kInt), 0.5, 0); });
  EXPECT_NE(message.find("expected a CPU float32 tensor"), std::string::npos) << message;
  message = error_of([] { hashed_dropout_keep(0, 4, -0.1); });
  EXPECT_NE(message.find("p must be in [0,1)"), std::string::npos) << message;
}

}  // namespace
}  // namespace mmkd::nn
