#include "mmkd/train/plateau_scheduler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "mmkd/core/error.h"

namespace mmkd::train {

namespace {

using Options = PlateauSchedulerOptions;

/// A one-parameter model so the optimisers have a param group.
std::vector<torch::Tensor> params() { return {torch::zeros({1}, torch::requires_grad())}; }

/// Epochs (1-based) at which step() reported a reduction.
std::vector<int> reductions(PlateauScheduler& s, const std::vector<double>& metrics) {
  std::vector<int> epochs;
  for (size_t i = 0; i < metrics.size(); ++i) {
    if (s.step(metrics[i])) epochs.push_back(static_cast<int>(i) + 1);
  }
  return epochs;
}

}  // namespace

TEST(PlateauScheduler, DefaultsArePyTorchsExceptFactorAndPatience) {
  const Options o;
  EXPECT_EQ(o.mode, Options::Mode::kMin);
  EXPECT_DOUBLE_EQ(o.factor, 0.5);
  EXPECT_EQ(o.patience, 10);
  EXPECT_DOUBLE_EQ(o.threshold, 1e-4);
  EXPECT_EQ(o.threshold_mode, Options::ThresholdMode::kRel);
  EXPECT_EQ(o.cooldown, 0);
  EXPECT_DOUBLE_EQ(o.min_lr, 0.0);
  EXPECT_DOUBLE_EQ(o.eps, 1e-8);
}

// patience 10: epoch 1 sets best; epochs 2..11 are bad epochs 1..10 (not > 10);
// epoch 12 is bad epoch 11 > 10 -> lr 1e-3 -> 5e-4.
TEST(PlateauScheduler, DefaultPatienceReducesOnEleventhBadEpoch) {
  torch::optim::Adam adam(params(), torch::optim::AdamOptions(1e-3));
  PlateauScheduler s(adam);
  EXPECT_EQ(reductions(s, std::vector<double>(12, 1.0)), std::vector<int>({12}));
  EXPECT_DOUBLE_EQ(s.learning_rates()[0], 5e-4);
  EXPECT_EQ(s.state().last_epoch, 12);
  EXPECT_EQ(s.state().num_bad_epochs, 0);
}

// patience 2, factor 0.5, threshold 1e-4 rel, cooldown 0, lr 1.
//  e1 10.0    < inf                     better, best 10, bad 0
//  e2  9.0    < 10*0.9999 = 9.999       better, best 9,  bad 0
//  e3  8.9995 < 9*0.9999 = 8.9991? no   bad 1 (improves, but by less than the threshold)
//  e4  9.5                              bad 2
//  e5  9.0                              bad 3 > 2 -> lr 0.5, bad 0
//  e6  8.0                              better, best 8, bad 0
//  e7  8.0                              bad 1
//  e8  8.0                              bad 2
//  e9  7.9999 < 8*0.9999 = 7.9992? no   bad 3 > 2 -> lr 0.25, bad 0
//  e10 7.0                              better, best 7
//  e11 6.999  < 7*0.9999 = 6.9993? yes  better, best 6.999 (beats the threshold)
//  e12 7.1, e13 7.1                     bad 1, 2
//  e14 7.1                              bad 3 -> lr 0.125
TEST(PlateauScheduler, PlateausAndRelativeThreshold) {
  torch::optim::SGD sgd(params(), torch::optim::SGDOptions(1.0));
  Options o;
  o.patience = 2;
  PlateauScheduler s(sgd, o);
  const std::vector<double> losses = {10.0, 9.0,    8.9995, 9.5,   9.0, 8.0, 8.0,
                                      8.0,  7.9999, 7.0,    6.999, 7.1, 7.1, 7.1};
  std::vector<double> lrs;
  std::vector<int> reduced;
  for (size_t i = 0; i < losses.size(); ++i) {
    if (s.step(losses[i])) reduced.push_back(static_cast<int>(i) + 1);
    lrs.push_back(s.learning_rates()[0]);
    if (i + 1 == 11) {
      EXPECT_DOUBLE_EQ(s.state().best, 6.999);
    }
  }
  EXPECT_EQ(reduced, std::vector<int>({5, 9, 14}));
  const std::vector<double> expected = {1,   1,    1,    1,    0.5,  0.5,  0.5,
                                        0.5, 0.25, 0.25, 0.25, 0.25, 0.25, 0.125};
  EXPECT_EQ(lrs, expected);
}

// patience 1, cooldown 2, constant loss 5, lr 1.
//  e1 better (best 5). e2 bad 1. e3 bad 2 > 1 -> lr 0.5, cooldown 2.
//  e4 bad 1, in cooldown (2) -> cooldown 1, bad 0.  e5 -> cooldown 0, bad 0.
//  e6 bad 1.  e7 bad 2 -> lr 0.25, cooldown 2.  e8, e9 cooldown.  e10 bad 1.  e11 -> lr 0.125.
// Without cooldown the same sequence reduces at 3, 5, 7, 9, 11.
TEST(PlateauScheduler, CooldownIgnoresBadEpochs) {
  torch::optim::Adam adam(params(), torch::optim::AdamOptions(1.0));
  Options o;
  o.patience = 1;
  o.cooldown = 2;
  PlateauScheduler s(adam, o);
  EXPECT_EQ(reductions(s, std::vector<double>(11, 5.0)), std::vector<int>({3, 7, 11}));
  EXPECT_DOUBLE_EQ(s.learning_rates()[0], 0.125);
  EXPECT_TRUE(s.in_cooldown());

  torch::optim::Adam adam2(params(), torch::optim::AdamOptions(1.0));
  o.cooldown = 0;
  PlateauScheduler s2(adam2, o);
  EXPECT_EQ(reductions(s2, std::vector<double>(11, 5.0)), std::vector<int>({3, 5, 7, 9, 11}));
}

// patience 0, min_lr 0.3, lr 1: e1 better; e2 bad -> max(0.5, 0.3) = 0.5;
// e3 bad -> max(0.25, 0.3) = 0.3; e4 bad -> max(0.15, 0.3) = 0.3, change 0 <= eps -> false.
TEST(PlateauScheduler, MinLrBoundsAndNoChangeReportsFalse) {
  torch::optim::SGD sgd(params(), torch::optim::SGDOptions(1.0));
  Options o;
  o.patience = 0;
  o.min_lr = 0.3;
  PlateauScheduler s(sgd, o);
  EXPECT_FALSE(s.step(1.0));
  EXPECT_TRUE(s.step(1.0));
  EXPECT_DOUBLE_EQ(s.learning_rates()[0], 0.5);
  EXPECT_TRUE(s.step(1.0));
  EXPECT_DOUBLE_EQ(s.learning_rates()[0], 0.3);
  EXPECT_FALSE(s.step(1.0));
  EXPECT_DOUBLE_EQ(s.learning_rates()[0], 0.3);
  EXPECT_EQ(s.state().num_bad_epochs, 0);  // counters reset even though nothing changed
}

// lr 1.5e-8: new 7.5e-9, change 7.5e-9 is not > eps 1e-8 -> PyTorch keeps the lr.
TEST(PlateauScheduler, ChangesSmallerThanEpsAreSkipped) {
  torch::optim::SGD sgd(params(), torch::optim::SGDOptions(1.5e-8));
  Options o;
  o.patience = 0;
  PlateauScheduler s(sgd, o);
  s.step(1.0);
  EXPECT_FALSE(s.step(1.0));
  EXPECT_DOUBLE_EQ(s.learning_rates()[0], 1.5e-8);
}

// Two groups, lr 1.0 and 0.1, min_lr 0.08, patience 0.
// first reduction: 0.5 and max(0.05, 0.08) = 0.08; second: 0.25 and 0.08 (unchanged).
TEST(PlateauScheduler, EveryParamGroupIsReduced) {
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(params(), std::make_unique<torch::optim::AdamOptions>(1.0));
  groups.emplace_back(params(), std::make_unique<torch::optim::AdamOptions>(0.1));
  torch::optim::Adam adam(std::move(groups), torch::optim::AdamOptions(1.0));
  Options o;
  o.patience = 0;
  o.min_lr = 0.08;
  PlateauScheduler s(adam, o);
  s.step(1.0);
  EXPECT_TRUE(s.step(1.0));
  EXPECT_EQ(s.learning_rates(), std::vector<double>({0.5, 0.08}));
  EXPECT_TRUE(s.step(1.0));  // group 0 still changes
  EXPECT_EQ(s.learning_rates(), std::vector<double>({0.25, 0.08}));
}

// mode max, rel: better means a > best*(1+1e-4). patience 0.
//  e1 1.0 better. e2 1.00005 > 1.0001? no -> reduce. e3 2.0 better. e4 2.0 -> reduce.
// mode min, abs threshold 0.1: better means a < best - 0.1. patience 0.
//  e1 1.0 better. e2 0.95 < 0.9? no -> reduce. e3 0.85 < 0.9 yes, best 0.85. e4 0.8 < 0.75? no.
TEST(PlateauScheduler, MaxModeAndAbsoluteThreshold) {
  torch::optim::SGD sgd(params(), torch::optim::SGDOptions(1.0));
  Options o;
  o.patience = 0;
  o.mode = Options::Mode::kMax;
  PlateauScheduler s(sgd, o);
  EXPECT_EQ(s.state().best, -std::numeric_limits<double>::infinity());
  EXPECT_EQ(reductions(s, {1.0, 1.00005, 2.0, 2.0}), std::vector<int>({2, 4}));

  torch::optim::SGD sgd2(params(), torch::optim::SGDOptions(1.0));
  Options a;
  a.patience = 0;
  a.threshold_mode = Options::ThresholdMode::kAbs;
  a.threshold = 0.1;
  PlateauScheduler s2(sgd2, a);
  EXPECT_EQ(reductions(s2, {1.0, 0.95, 0.85, 0.8}), std::vector<int>({2, 4}));
  EXPECT_DOUBLE_EQ(s2.state().best, 0.85);
}

TEST(PlateauScheduler, NanMetricIsABadEpoch) {
  torch::optim::SGD sgd(params(), torch::optim::SGDOptions(1.0));
  Options o;
  o.patience = 0;
  PlateauScheduler s(sgd, o);
  s.step(1.0);
  EXPECT_TRUE(s.step(std::nan("")));
  EXPECT_DOUBLE_EQ(s.state().best, 1.0);
}

// Saving after epoch 4 of the patience-2 sequence and resuming in a fresh scheduler gives the
// same decisions as running straight through.
TEST(PlateauScheduler, StateRoundTripsThroughJson) {
  Options o;
  o.patience = 2;
  o.cooldown = 1;
  const std::vector<double> head = {10.0, 9.0, 9.5, 9.5};
  const std::vector<double> tail = {9.5, 9.5, 9.5, 9.5, 8.0, 8.5, 8.5, 8.5};

  torch::optim::SGD sgd(params(), torch::optim::SGDOptions(1.0));
  PlateauScheduler straight(sgd, o);
  reductions(straight, head);
  const nlohmann::json saved = straight.state().to_json();
  EXPECT_EQ(saved.at("num_bad_epochs").get<int64_t>(), 2);
  EXPECT_EQ(saved.at("last_epoch").get<int64_t>(), 4);
  const auto expected = reductions(straight, tail);

  torch::optim::SGD sgd2(params(), torch::optim::SGDOptions(1.0));
  PlateauScheduler resumed(sgd2, o);
  resumed.load_state(PlateauSchedulerState::from_json(nlohmann::json::parse(saved.dump())));
  EXPECT_EQ(reductions(resumed, tail), expected);
  EXPECT_EQ(resumed.state().last_epoch, 12);
  EXPECT_EQ(resumed.learning_rates(), straight.learning_rates());
  // e5 bad 3 -> reduce, cooldown 1; e6 cooldown; e7 bad 1; e8 bad 2; e9 8.0 better;
  // e10..e12 bad 1..3 -> reduce at e12.
  EXPECT_EQ(expected, std::vector<int>({1, 8}));  // indices within `tail`: epochs 5 and 12

  // A fresh state's best is +inf; JSON has no infinity, so it is written as "inf".
  torch::optim::SGD sgd3(params(), torch::optim::SGDOptions(1.0));
  PlateauScheduler fresh(sgd3, o);
  const auto j = fresh.state().to_json();
  EXPECT_EQ(j.at("best"), "inf");
  EXPECT_EQ(PlateauSchedulerState::from_json(j).best, std::numeric_limits<double>::infinity());
  EXPECT_THROW(PlateauSchedulerState::from_json({{"best", 1.0}}), Error);
  EXPECT_THROW(
      PlateauSchedulerState::from_json(
          {{"best", "x"}, {"num_bad_epochs", 0}, {"cooldown_counter", 0}, {"last_epoch", 0}}),
      Error);
}

TEST(PlateauScheduler, RejectsBadOptionsAndUnsupportedOptimisers) {
  torch::optim::SGD sgd(params(), torch::optim::SGDOptions(1.0));
  Options o;
  o.factor = 1.0;
  EXPECT_THROW(PlateauScheduler(sgd, o), Error);
  torch::optim::LBFGS lbfgs(params(), torch::optim::LBFGSOptions(1.0));
  try {
    PlateauScheduler s(lbfgs);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected Adam, AdamW, SGD"), std::string::npos)
        << e.what();
  }
}

}  // namespace mmkd::train
