#include "mmkd/train/labels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "mmkd/core/error.h"

namespace mmkd::train {

TEST(Labels, RoundHalfEvenMatchesNumpy) {
  // np.round([2.5, -0.5, 0.5, 1.5, -2.5, -1.5, 0.4999, -0.4]) == [2, -0, 0, 2, -2, -2, 0, -0]
  EXPECT_EQ(round_half_even(2.5), 2.0);
  EXPECT_EQ(round_half_even(0.5), 0.0);
  EXPECT_EQ(round_half_even(1.5), 2.0);
  EXPECT_EQ(round_half_even(-2.5), -2.0);
  EXPECT_EQ(round_half_even(-1.5), -2.0);
  EXPECT_EQ(round_half_even(3.5), 4.0);
  EXPECT_EQ(round_half_even(0.4999), 0.0);
  EXPECT_EQ(round_half_even(0.5000001), 1.0);
  EXPECT_EQ(round_half_even(-0.5), 0.0);
  EXPECT_TRUE(std::signbit(round_half_even(-0.5)));  // numpy gives -0.0
  EXPECT_TRUE(std::signbit(round_half_even(-0.4)));
  EXPECT_TRUE(std::isnan(round_half_even(std::nan(""))));
}

TEST(Labels, SevenClassRuleClipsRoundsHalfEvenAndShifts) {
  // clip to [-3,3], round half to even, +3
  EXPECT_EQ(sentiment_to_class(2.5), 5);   // 2.5 -> 2 -> 5
  EXPECT_EQ(sentiment_to_class(-0.5), 3);  // -0.5 -> -0 -> 3
  EXPECT_EQ(sentiment_to_class(0.5), 3);   // 0.5 -> 0 -> 3
  EXPECT_EQ(sentiment_to_class(1.5), 5);   // 1.5 -> 2 -> 5
  EXPECT_EQ(sentiment_to_class(-2.5), 1);  // -2.5 -> -2 -> 1
  EXPECT_EQ(sentiment_to_class(-1.5), 1);  // -1.5 -> -2 -> 1
  EXPECT_EQ(sentiment_to_class(3.7), 6);   // clip 3 -> 6
  EXPECT_EQ(sentiment_to_class(-4.0), 0);  // clip -3 -> 0
  EXPECT_EQ(sentiment_to_class(0.0), 3);
  EXPECT_EQ(sentiment_to_class(-3.0), 0);
  EXPECT_EQ(sentiment_to_class(3.0), 6);
  EXPECT_EQ(sentiment_to_class(0.6666667), 4);
  EXPECT_EQ(sentiment_to_class(-1.3333334), 2);
  EXPECT_EQ(sentiment_to_class(std::numeric_limits<double>::infinity()), 6);
  EXPECT_THROW(sentiment_to_class(std::nan("")), Error);
}

TEST(Labels, FiveClassRuleClipsToTwo) {
  // clip to [-2,2], round half to even, +2
  EXPECT_EQ(sentiment_to_class5(3.0), 4);   // clip 2 -> 4
  EXPECT_EQ(sentiment_to_class5(2.5), 4);   // clip 2 -> 4
  EXPECT_EQ(sentiment_to_class5(1.5), 4);   // 1.5 -> 2 -> 4
  EXPECT_EQ(sentiment_to_class5(0.5), 2);   // 0.5 -> 0 -> 2
  EXPECT_EQ(sentiment_to_class5(-0.5), 2);  // -0.5 -> -0 -> 2
  EXPECT_EQ(sentiment_to_class5(-1.2), 1);
  EXPECT_EQ(sentiment_to_class5(-2.6), 0);  // clip -2 -> 0
  EXPECT_THROW(sentiment_to_class5(std::nan("")), Error);
}

TEST(Labels, TorchRoundIsHalfToEvenInThisLibTorch) {
  // The tensor rule relies on it: torch.round == np.round on ties.
  const auto rounded =
      torch::tensor({0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5}, torch::kDouble).round();
  const std::vector<double> expected = {0.0, 2.0, 2.0, -0.0, -2.0, -2.0, 4.0};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(rounded[i].item<double>(), expected[i]) << "index " << i;
  }
  const auto rounded_f = torch::tensor({0.5f, 1.5f, 2.5f, -2.5f}, torch::kFloat).round();
  EXPECT_EQ(rounded_f[0].item<float>(), 0.0f);
  EXPECT_EQ(rounded_f[1].item<float>(), 2.0f);
  EXPECT_EQ(rounded_f[2].item<float>(), 2.0f);
  EXPECT_EQ(rounded_f[3].item<float>(), -2.0f);
}

TEST(Labels, TensorRuleMatchesScalarRule) {
  const std::vector<float> values = {2.5f, -0.5f, 0.5f, 1.5f,       -2.5f,       3.7f,    -4.0f,
                                     0.0f, -3.0f, 3.0f, 0.6666667f, -1.3333334f, 2.4999f, -0.51f};
  const auto labels = torch::tensor(values, torch::kFloat);
  const auto classes = sentiment_to_class(labels);
  ASSERT_EQ(classes.scalar_type(), torch::kLong);
  ASSERT_EQ(classes.sizes(), labels.sizes());
  const std::vector<int64_t> expected = {5, 3, 3, 5, 1, 6, 0, 3, 0, 6, 4, 2, 5, 2};
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(classes[i].item<int64_t>(), expected[i]) << "value " << values[i];
    EXPECT_EQ(classes[i].item<int64_t>(), sentiment_to_class(static_cast<double>(values[i])));
  }
}

TEST(Labels, TensorRuleKeepsShapeAndRejectsBadInput) {
  // MulT's label layout [N,1,1].
  const auto labels = torch::tensor({-2.5, 1.5, 0.5}, torch::kDouble).view({3, 1, 1});
  const auto classes = sentiment_to_class(labels);
  EXPECT_EQ(classes.sizes(), torch::IntArrayRef({3, 1, 1}));
  EXPECT_EQ(classes.view(-1)[0].item<int64_t>(), 1);
  EXPECT_EQ(classes.view(-1)[1].item<int64_t>(), 5);
  EXPECT_EQ(classes.view(-1)[2].item<int64_t>(), 3);
  EXPECT_THROW(sentiment_to_class(torch::tensor({1, 2}, torch::kLong)), Error);
  EXPECT_THROW(sentiment_to_class(torch::tensor({1.0, std::nan("")}, torch::kDouble)), Error);
  EXPECT_EQ(sentiment_to_class(torch::empty({0}, torch::kFloat)).numel(), 0);
}

}  // namespace mmkd::train
