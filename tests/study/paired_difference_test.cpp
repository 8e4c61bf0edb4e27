#include "mmkd/study/paired_difference.h"

#include <gtest/gtest.h>

#include <cmath>

#include "mmkd/core/error.h"

namespace mmkd::study {
namespace {

// Closed forms: df = 1 is the Cauchy distribution, df = 2 has F(t) = 1/2 + t / (2 sqrt(2 + t^2)).
double cauchy_cdf(double t) { return 0.5 + std::atan(t) / M_PI; }
double t2_cdf(double t) { return 0.5 + t / (2.0 * std::sqrt(2.0 + t * t)); }
double t2_quantile(double p) { return (2 * p - 1) / std::sqrt(2 * p * (1 - p)); }

TEST(StudentT, CdfMatchesClosedFormsForOneAndTwoDegreesOfFreedom) {
  for (double t : {-30.0, -4.0, -1.0, -0.2, 0.0, 0.3, 1.0, 2.5, 12.7, 100.0}) {
    EXPECT_NEAR(student_t_cdf(t, 1), cauchy_cdf(t), 1e-12) << t;
    EXPECT_NEAR(student_t_cdf(t, 2), t2_cdf(t), 1e-12) << t;
  }
  EXPECT_DOUBLE_EQ(student_t_cdf(INFINITY, 3), 1.0);
  EXPECT_DOUBLE_EQ(student_t_cdf(-INFINITY, 3), 0.0);
}

TEST(StudentT, LargeDegreesOfFreedomApproachTheNormal) {
  const double normal_1 = 0.5 * std::erfc(-1.0 / std::sqrt(2.0));
  EXPECT_NEAR(student_t_cdf(1.0, 1e6), normal_1, 1e-6);
  EXPECT_NEAR(student_t_quantile(0.975, 1e6), 1.959964, 1e-5);
}

TEST(StudentT, QuantileInvertsTheCdf) {
  for (double p : {0.025, 0.2, 0.5, 0.9, 0.975, 0.999})
    EXPECT_NEAR(student_t_quantile(p, 2), t2_quantile(p), 1e-9) << p;
  EXPECT_NEAR(student_t_quantile(0.975, 1), std::tan(M_PI * 0.475), 1e-8);
  // Printed t tables: 2.776 (4 df), 2.228 (10 df).
  EXPECT_NEAR(student_t_quantile(0.975, 4), 2.776, 5e-4);
  EXPECT_NEAR(student_t_quantile(0.975, 10), 2.228, 5e-4);
  EXPECT_THROW(student_t_quantile(1.0, 3), Error);
  EXPECT_THROW(student_t_cdf(0.0, 0), Error);
}

TEST(PairedDifference, ThreeSeedsByHand) {
  // Differences 2, 3, 1: mean 2, sd 1, se 1/sqrt(3), t = 2 sqrt(3) with 2 df.
  const auto d = paired_difference({{0, 50}, {1, 52}, {2, 47}}, {{0, 48}, {1, 49}, {2, 46}});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->n, 3);
  EXPECT_DOUBLE_EQ(d->mean, 2.0);
  EXPECT_NEAR(d->std, 1.0, 1e-12);
  const double t = 2.0 * std::sqrt(3.0);
  EXPECT_NEAR(d->t, t, 1e-12);
  EXPECT_NEAR(d->p, 2 * (1 - t2_cdf(t)), 1e-12);
  const double half = t2_quantile(0.975) / std::sqrt(3.0);
  EXPECT_NEAR(d->ci_low, 2 - half, 1e-9);
  EXPECT_NEAR(d->ci_high, 2 + half, 1e-9);
}

TEST(PairedDifference, UsesOnlySeedsBothRowsFinished) {
  const auto d = paired_difference({{0, 10}, {1, 14}, {5, 99}}, {{0, 9}, {1, 11}, {2, 0}});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->n, 2);
  EXPECT_DOUBLE_EQ(d->mean, 2.0);  // differences 1 and 3
  EXPECT_FALSE(paired_difference({{3, 1}}, {{4, 1}}));
}

TEST(PairedDifference, OneSeedHasNoIntervalAndIdenticalShiftsNoSpread) {
  const auto one = paired_difference({{0, 3}}, {{0, 1}});
  ASSERT_TRUE(one);
  EXPECT_EQ(one->n, 1);
  EXPECT_DOUBLE_EQ(one->mean, 2.0);
  EXPECT_DOUBLE_EQ(one->ci_low, 2.0);
  EXPECT_DOUBLE_EQ(one->ci_high, 2.0);
  EXPECT_DOUBLE_EQ(one->p, 1.0);
  const auto same = paired_difference({{0, 3}, {1, 4}}, {{0, 1}, {1, 2}});
  ASSERT_TRUE(same);
  EXPECT_TRUE(std::isinf(same->t));
  EXPECT_DOUBLE_EQ(same->p, 0.0);
  const auto none = paired_difference({{0, 3}, {1, 4}}, {{0, 3}, {1, 4}});
  EXPECT_DOUBLE_EQ(none->t, 0.0);
  EXPECT_DOUBLE_EQ(none->p, 1.0);
}

}  // namespace
}  // namespace mmkd::study
