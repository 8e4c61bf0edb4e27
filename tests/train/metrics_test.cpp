#include "mmkd/train/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "mmkd/core/error.h"

namespace mmkd::train {

namespace {

torch::Tensor classes(const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong); }

}  // namespace

// Imbalanced 3-class example, worked by hand.
//   y_true = [0 0 0 0 0 0 1 1 1 2]   support 6, 3, 1
//   y_pred = [0 0 0 0 0 1 1 0 0 2]
// Confusion (rows true, cols pred):
//   true 0: [5 1 0]
//   true 1: [2 1 0]
//   true 2: [0 0 1]       predicted counts (column sums): 7, 2, 1
// class 0: tp 5, P = 5/7, R = 5/6, F1 = 2*5/(6+7) = 10/13
// class 1: tp 1, P = 1/2, R = 1/3, F1 = 2*1/(3+2) = 2/5
// class 2: tp 1, P = 1,   R = 1,   F1 = 1
// accuracy = 7/10
// weighted F1 = (6*10/13 + 3*2/5 + 1*1)/10 = (300/65 + 78/65 + 65/65)/10 = 443/650
// macro F1    = (10/13 + 2/5 + 1)/3 = (50/65 + 26/65 + 65/65)/3 = 141/195 = 47/65
// majority rate = 6/10
TEST(ClassificationMetrics, ImbalancedThreeClassByHand) {
  const auto truth = classes({0, 0, 0, 0, 0, 0, 1, 1, 1, 2});
  const auto pred = classes({0, 0, 0, 0, 0, 1, 1, 0, 0, 2});
  const auto m = classification_metrics(pred, truth, 3);
  EXPECT_EQ(m.count, 10);
  EXPECT_EQ(m.num_classes, 3);
  EXPECT_DOUBLE_EQ(m.accuracy, 7.0 / 10.0);
  EXPECT_DOUBLE_EQ(m.f1_weighted, 443.0 / 650.0);
  EXPECT_DOUBLE_EQ(m.f1_macro, 47.0 / 65.0);
  EXPECT_EQ(m.macro_classes, 3);
  EXPECT_DOUBLE_EQ(m.majority_rate, 0.6);
  ASSERT_EQ(m.per_class.size(), 3u);
  EXPECT_DOUBLE_EQ(m.per_class[0].precision, 5.0 / 7.0);
  EXPECT_DOUBLE_EQ(m.per_class[0].recall, 5.0 / 6.0);
  EXPECT_DOUBLE_EQ(m.per_class[0].f1, 10.0 / 13.0);
  EXPECT_EQ(m.per_class[0].support, 6);
  EXPECT_EQ(m.per_class[0].predicted, 7);
  EXPECT_DOUBLE_EQ(m.per_class[1].precision, 1.0 / 2.0);
  EXPECT_DOUBLE_EQ(m.per_class[1].recall, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.per_class[1].f1, 2.0 / 5.0);
  EXPECT_EQ(m.per_class[1].support, 3);
  EXPECT_DOUBLE_EQ(m.per_class[2].f1, 1.0);
  EXPECT_EQ(m.per_class[2].support, 1);
  const std::vector<int64_t> expected_confusion = {5, 1, 0, 2, 1, 0, 0, 0, 1};
  ASSERT_EQ(m.confusion.sizes(), torch::IntArrayRef({3, 3}));
  for (int64_t i = 0; i < 9; ++i) {
    EXPECT_EQ(m.confusion.view(-1)[i].item<int64_t>(), expected_confusion[i]) << "cell " << i;
  }
  EXPECT_TRUE(torch::equal(confusion_matrix(pred, truth, 3), m.confusion));
}

// Seven classes (the default), only 0, 1 present in truth and 2 predicted once.
//   y_true = [0 0 1 1], y_pred = [0 2 1 1]
// class 0: tp 1, P 1, R 1/2, F1 2/3; class 1: F1 1; class 2: tp 0, support 0, predicted 1, F1 0.
// weighted F1 = (2*2/3 + 2*1 + 0*0)/4 = 5/6 (class 2 weighs 0)
// macro F1 over the union {0,1,2} (sklearn's labels=None) = (2/3 + 1 + 0)/3 = 5/9;
// classes 3..6 appear nowhere and are left out (over all 7 it would be 5/21).
TEST(ClassificationMetrics, MacroUsesUnionOfPresentLabelsLikeSklearn) {
  const auto m = classification_metrics(classes({0, 2, 1, 1}), classes({0, 0, 1, 1}));
  EXPECT_EQ(m.num_classes, 7);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.75);
  EXPECT_DOUBLE_EQ(m.f1_weighted, 5.0 / 6.0);
  EXPECT_DOUBLE_EQ(m.f1_macro, 5.0 / 9.0);
  EXPECT_EQ(m.macro_classes, 3);
  EXPECT_DOUBLE_EQ(m.per_class[2].precision, 0.0);
  EXPECT_DOUBLE_EQ(m.per_class[2].recall, 0.0);  // zero_division -> 0
  EXPECT_DOUBLE_EQ(m.per_class[2].f1, 0.0);
  EXPECT_EQ(m.confusion.sizes(), torch::IntArrayRef({7, 7}));
  EXPECT_EQ(m.confusion[0][2].item<int64_t>(), 1);
}

TEST(ClassificationMetrics, MajorityRateAndPerfectPrediction) {
  // true counts: class 3 x3, class 0 x1, class 6 x1 -> 3/5
  const auto truth = classes({3, 3, 0, 6, 3});
  EXPECT_DOUBLE_EQ(majority_class_rate(truth), 3.0 / 5.0);
  const auto m = classification_metrics(truth, truth);
  EXPECT_DOUBLE_EQ(m.accuracy, 1.0);
  EXPECT_DOUBLE_EQ(m.f1_weighted, 1.0);
  EXPECT_DOUBLE_EQ(m.f1_macro, 1.0);
  EXPECT_EQ(m.confusion.trace().item<int64_t>(), 5);
}

TEST(ClassificationMetrics, RejectsBadInput) {
  EXPECT_THROW(classification_metrics(classes({0, 1}), classes({0})), Error);
  EXPECT_THROW(classification_metrics(classes({0, 7}), classes({0, 1})), Error);
  EXPECT_THROW(classification_metrics(classes({0, -1}), classes({0, 1})), Error);
  EXPECT_THROW(classification_metrics(classes({}), classes({})), Error);
  EXPECT_THROW(classification_metrics(torch::tensor({0.0, 1.0}), classes({0, 1})), Error);
  try {
    classification_metrics(classes({0, 9}), classes({0, 1}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("predicted[1] = 9 is outside [0, 7)"), std::string::npos)
        << e.what();
  }
}

TEST(ClassificationMetrics, JsonAndSummary) {
  const auto m = classification_metrics(classes({0, 2, 1, 1}), classes({0, 0, 1, 1}), 3);
  const auto j = m.to_json();
  EXPECT_DOUBLE_EQ(j.at("accuracy").get<double>(), 0.75);
  EXPECT_EQ(j.at("count").get<int64_t>(), 4);
  EXPECT_EQ(j.at("per_class").size(), 3u);
  EXPECT_EQ(j.at("per_class")[0].at("support").get<int64_t>(), 2);
  EXPECT_EQ(j.at("confusion"), nlohmann::json({{1, 0, 1}, {0, 2, 0}, {0, 0, 0}}));
  EXPECT_EQ(m.summary(), "acc3 0.7500 F1w 0.8333 F1m 0.5556 (N 4, majority 0.5000)");
}

// y_true = [T T T T F F], y_pred = [T T T F F F]: tp 3, fn 1, fp 0, tn 2.
// F1(T) = 6/7, F1(F) = 2*2/(2+3) = 4/5.
// weighted by true support (4, 2): (4*6/7 + 2*4/5)/6 = 88/105.
// arguments swapped (MulT's call order): supports (3, 3): (6/7 + 4/5)/2 = 29/35.
TEST(BinaryWeightedF1, WeightsByTrueSupport) {
  const std::vector<bool> t = {true, true, true, true, false, false};
  const std::vector<bool> p = {true, true, true, false, false, false};
  EXPECT_DOUBLE_EQ(binary_weighted_f1(t, p), 88.0 / 105.0);
  EXPECT_DOUBLE_EQ(binary_weighted_f1(p, t), 29.0 / 35.0);
  // Only one label present anywhere: sklearn's union is {True}, F1 1.
  EXPECT_DOUBLE_EQ(binary_weighted_f1({true, true}, {true, true}), 1.0);
  EXPECT_TRUE(std::isnan(binary_weighted_f1({}, {})));
}

// x = [1 2 3 4], y = [1 3 2 4]: means 2.5; dx = [-1.5 -.5 .5 1.5], dy = [-1.5 .5 -.5 1.5]
// sxy = 2.25 - .25 - .25 + 2.25 = 4, sxx = syy = 5, r = 4/5.
TEST(PearsonR, TinyCasesByHand) {
  EXPECT_NEAR(pearson_r({1, 2, 3, 4}, {1, 3, 2, 4}), 0.8, 1e-15);
  EXPECT_DOUBLE_EQ(pearson_r({1, 2, 3}, {6, 4, 2}), -1.0);
  EXPECT_DOUBLE_EQ(pearson_r({1, 2, 3}, {2, 4, 6}), 1.0);
  EXPECT_TRUE(std::isnan(pearson_r({1, 2, 3}, {5, 5, 5})));  // numpy: nan
  EXPECT_TRUE(std::isnan(pearson_r({1}, {2})));
  EXPECT_THROW(pearson_r({1, 2}, {1}), Error);
}

// MulT / MMSA regression protocol, by hand.
//  i    pred   true | acc7: round(clip3)  | acc5: round(clip2)  | non0: p>0 t>0 | has0: p>=0 t>=0
//  0    2.6    3.0  |  3  3  ok           |  2  2  ok           |  T  T  ok     |  T  T  ok
//  1   -0.4    0.0  | -0  0  ok           | -0  0  ok           |  (excluded)   |  F  T  x
//  2    0.5    1.0  |  0  1  x  (0.5->0)  |  0  1  x            |  T  T  ok     |  T  T  ok
//  3   -1.5   -2.0  | -2 -2  ok (-1.5->-2)| -2 -2  ok           |  F  F  ok     |  F  F  ok
//  4    3.7    2.5  |  3  2  x  (2.5->2)  |  2  2  ok (clip 2) |  T  T  ok     |  T  T  ok
//  5    0.0   -0.6  |  0 -1  x            |  0 -1  x            |  F  F  ok     |  T  F  x
//  6   -2.2   -1.6  | -2 -2  ok           | -2 -2  ok           |  F  F  ok     |  F  F  ok
//  7   -0.3    0.6  | -0  1  x            | -0  1  x            |  F  T  x      |  F  T  x
// acc7 = 4/8, acc5 = 5/8.
// |pred - true| = .4 .4 .5 .5 1.2 .6 .6 .9 -> sum 5.1, MAE 0.6375.
// non0 (7 samples): acc2 = 6/7. Binary truth T T F T F F T (T support 4, F 3), pred T T F T F F F:
//   F1(T) = 2*3/(4+3) = 6/7, F1(F) = 2*3/(3+4) = 6/7 -> weighted 6/7 (either argument order).
// has0 (8 samples): acc2 = 5/8. truth T T T F T F F T (T 5, F 3); pred T F T F T T F F (T 4, F 4):
//   F1(T) = 2*3/(5+4) = 2/3, F1(F) = 2*2/(3+4) = 4/7 -> (5*2/3 + 3*4/7)/8 = 106/168 = 53/84.
TEST(RegressionMetrics, MultProtocolByHand) {
  const auto pred = torch::tensor({2.6, -0.4, 0.5, -1.5, 3.7, 0.0, -2.2, -0.3}, torch::kDouble);
  const auto truth = torch::tensor({3.0, 0.0, 1.0, -2.0, 2.5, -0.6, -1.6, 0.6}, torch::kDouble);
  const auto m = regression_metrics(pred.view({8, 1}), truth.view({8, 1, 1}));
  EXPECT_EQ(m.count, 8);
  EXPECT_NEAR(m.mae, 0.6375, 1e-12);
  EXPECT_DOUBLE_EQ(m.acc7, 4.0 / 8.0);
  EXPECT_DOUBLE_EQ(m.acc5, 5.0 / 8.0);
  EXPECT_EQ(m.non0_count, 7);
  EXPECT_DOUBLE_EQ(m.non0_acc2, 6.0 / 7.0);
  EXPECT_DOUBLE_EQ(m.non0_f1, 6.0 / 7.0);
  EXPECT_DOUBLE_EQ(m.non0_f1_mult_order, 6.0 / 7.0);
  EXPECT_DOUBLE_EQ(m.has0_acc2, 5.0 / 8.0);
  EXPECT_DOUBLE_EQ(m.has0_f1, 53.0 / 84.0);
  const std::vector<double> p = {2.6, -0.4, 0.5, -1.5, 3.7, 0.0, -2.2, -0.3};
  const std::vector<double> t = {3.0, 0.0, 1.0, -2.0, 2.5, -0.6, -1.6, 0.6};
  EXPECT_DOUBLE_EQ(m.pearson_r, pearson_r(p, t));
  // np.corrcoef(p, t)[0, 1] = 0.9289212398037118 (checked once with numpy).
  EXPECT_NEAR(m.pearson_r, 0.9289212398037118, 1e-12);

  const auto j = m.to_json();
  EXPECT_DOUBLE_EQ(j.at("acc7").get<double>(), 0.5);
  EXPECT_EQ(j.at("non0_count").get<int64_t>(), 7);
  EXPECT_NE(m.summary().find("acc7 0.5000 acc5 0.6250"), std::string::npos) << m.summary();
}

TEST(RegressionMetrics, FloatInputsAndEdgeCases) {
  // All labels zero: no non-zero samples, so the Non0 metrics are NaN (written as null).
  const auto m = regression_metrics(torch::tensor({0.5f, -0.5f}), torch::tensor({0.0f, 0.0f}));
  EXPECT_EQ(m.non0_count, 0);
  EXPECT_TRUE(std::isnan(m.non0_acc2));
  EXPECT_TRUE(std::isnan(m.non0_f1));
  EXPECT_TRUE(std::isnan(m.pearson_r));  // constant truth
  EXPECT_DOUBLE_EQ(m.acc7, 1.0);         // 0.5 -> 0 and -0.5 -> -0, both class 3
  EXPECT_DOUBLE_EQ(m.has0_acc2, 0.5);    // -0.5 >= 0 is false
  EXPECT_NE(m.to_json().dump().find("\"non0_acc2\":null"), std::string::npos);
  EXPECT_THROW(regression_metrics(torch::tensor({1.0}), torch::tensor({1.0, 2.0})), Error);
  EXPECT_THROW(regression_metrics(torch::empty({0}), torch::empty({0})), Error);
}

}  // namespace mmkd::train
