// Event mass, chance level, lift, proxy event masks and ideal maps on hand examples and loops.
#include "mmkd/distill/event_mass.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "../support/numbers.h"
#include "mmkd/core/error.h"

namespace {

using mmkd::distill::NonEventRows;
using mmkd::distill::WindowRule;

using mmkd::testing::kInf;

torch::Tensor bools(std::vector<std::vector<int>> rows) {
  const auto n = static_cast<int64_t>(rows.size()), t = static_cast<int64_t>(rows[0].size());
  auto out = torch::zeros({n, t}, torch::kBool);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < t; ++j) out[i][j] = rows[i][j] != 0;
  return out;
}

// map [2,3,4]: sample 1 has key 3 padded and a zero row 0.
torch::Tensor hand_map() {
  return torch::tensor({0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.0, 0.0, 0.25, 0.25, 0.25, 0.25,  //
                        0.0, 0.0, 0.0, 0.0, 0.2, 0.3, 0.5, 0.0, 1.0,  0.0,  0.0,  0.0},
                       torch::kFloat)
      .reshape({2, 3, 4});
}

TEST(EventMass, HandExampleWithPaddingZeroRowsAndNonEventRows) {
  const auto query_events = bools({{1, 0, 1}, {1, 1, 0}});
  const auto key_events = bools({{0, 1, 1, 0}, {1, 0, 0, 1}});  // s1 key 3: event but padded
  const auto padding = bools({{0, 0, 0, 0}, {0, 0, 0, 1}});
  const auto r = mmkd::distill::event_mass(hand_map(), query_events, key_events, padding);
  // Counted rows: (0,0), (0,2), (1,1); (1,0) is a zero row, (0,1) and (1,2) are not events.
  EXPECT_EQ(r.rows, 3);
  EXPECT_NEAR(r.mass, (0.5 + 0.5 + 0.2) / 3, 1e-6);  // float map
  EXPECT_NEAR(r.chance, (2.0 / 4 + 2.0 / 4 + 1.0 / 3) / 3, 1e-9);
  EXPECT_NEAR(r.lift(), r.mass / r.chance, 1e-12);
  EXPECT_NEAR(r.lift(), 0.9, 1e-6);
  // Without the padding mask key 3 of sample 1 is a visible event: chance 2/4 for row (1,1).
  const auto unpadded = mmkd::distill::event_mass(hand_map(), query_events, key_events);
  EXPECT_NEAR(unpadded.chance, (0.5 + 0.5 + 0.5) / 3, 1e-9);
}

// Plain-loop event mass with a causal attention mask (key k visible to row q iff k <= q).
TEST(EventMass, MatchesLoopWithAttentionMask) {
  torch::manual_seed(3);
  const int64_t nb = 3, nq = 5, nk = 5;
  auto logits = torch::randn({nb, nq, nk});
  const auto causal = torch::triu(torch::full({nq, nk}, -kInf), 1);
  const auto padding = bools({{1, 0, 0, 0, 0}, {0, 0, 0, 0, 0}, {1, 1, 0, 0, 0}});
  logits = logits + causal;
  logits = logits.masked_fill(padding.unsqueeze(1), -kInf);
  auto map = torch::softmax(logits, -1).nan_to_num(0.0);
  const auto qe = bools({{1, 1, 0, 1, 1}, {0, 1, 1, 0, 1}, {1, 1, 1, 0, 1}});
  const auto ke = bools({{1, 0, 1, 1, 0}, {0, 0, 1, 0, 1}, {1, 0, 0, 1, 1}});
  double mass = 0, chance = 0;
  int64_t rows = 0;
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t q = 0; q < nq; ++q) {
      if (!qe[b][q].item<bool>()) continue;
      double sum = 0, on = 0;
      int visible = 0, events = 0;
      for (int64_t k = 0; k <= q; ++k) {
        if (padding[b][k].item<bool>()) continue;
        const double a = map[b][q][k].item<double>();
        ++visible;
        sum += a;
        if (ke[b][k].item<bool>()) {
          ++events;
          on += a;
        }
      }
      if (visible == 0 || sum <= 0) continue;
      mass += on / sum;
      chance += static_cast<double>(events) / visible;
      ++rows;
    }
  const auto r = mmkd::distill::event_mass(map, qe, ke, padding, causal);
  EXPECT_EQ(r.rows, rows);
  EXPECT_NEAR(r.mass, mass / rows, 1e-6);
  EXPECT_NEAR(r.chance, chance / rows, 1e-9);
  // A bool attention mask (true = masked) gives the same answer.
  const auto as_bool = mmkd::distill::event_mass(map, qe, ke, padding, causal.isinf());
  EXPECT_EQ(as_bool.rows, r.rows);
  EXPECT_NEAR(as_bool.chance, r.chance, 1e-12);
  EXPECT_THROW(mmkd::distill::event_mass(map, qe, ke.slice(1, 0, 4)), mmkd::Error);
}

TEST(EventMass, UniformRowsSitAtChanceAndAddPoolsByRows) {
  const auto qe = bools({{1, 1}});
  const auto ke = bools({{1, 0, 0, 1, 0}});
  const auto r = mmkd::distill::event_mass(torch::full({1, 2, 5}, 0.2), qe, ke);
  EXPECT_NEAR(r.mass, 0.4, 1e-6);
  EXPECT_NEAR(r.lift(), 1.0, 1e-6);
  mmkd::distill::EventMass a{0.6, 0.3, 2}, b{0.3, 0.6, 1};
  a.add(b);
  EXPECT_EQ(a.rows, 3);
  EXPECT_NEAR(a.mass, 0.5, 1e-12);
  EXPECT_NEAR(a.chance, 0.4, 1e-12);
  mmkd::distill::EventMass none;
  EXPECT_TRUE(std::isnan(none.lift()));
  none.add(mmkd::distill::EventMass{});
  EXPECT_EQ(none.rows, 0);
}

TEST(IdealMap, RowsFollowEventsPaddingAndMode) {
  const auto qe = bools({{1, 0, 1}, {1, 0, 0}});
  const auto ke = bools({{0, 1, 1, 0}, {0, 0, 0, 1}});
  const auto padding = bools({{0, 0, 0, 0}, {0, 0, 0, 1}});
  const auto row = [](const torch::Tensor& m, int64_t b, int64_t q) {
    return std::vector<float>(m[b][q].data_ptr<float>(), m[b][q].data_ptr<float>() + 4);
  };
  const std::vector<float> events{0, 0.5, 0.5, 0}, zero{0, 0, 0, 0}, all{0.25, 0.25, 0.25, 0.25},
      visible3{1 / 3.0f, 1 / 3.0f, 1 / 3.0f, 0};
  const auto z = mmkd::distill::ideal_map(qe, ke, padding).contiguous();
  ASSERT_EQ(z.sizes(), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(row(z, 0, 0), events);
  EXPECT_EQ(row(z, 0, 1), zero);
  EXPECT_EQ(row(z, 0, 2), events);
  EXPECT_EQ(row(z, 1, 0), visible3);  // its only event key is padded → uniform over visible
  EXPECT_EQ(row(z, 1, 1), zero);
  const auto u = mmkd::distill::ideal_map(qe, ke, padding, {}, NonEventRows::kUniform).contiguous();
  EXPECT_EQ(row(u, 0, 1), all);
  EXPECT_EQ(row(u, 1, 1), visible3);
  EXPECT_EQ(row(u, 0, 2), events);
  const auto e = mmkd::distill::ideal_map(qe, ke, padding, {}, NonEventRows::kEvents).contiguous();
  EXPECT_EQ(row(e, 0, 1), events);
  // Causal mask: row 0 sees key 0 only, no event there → uniform over {0}; row 2 sees keys 1,2.
  const auto causal = torch::triu(torch::full({3, 4}, -kInf), 1);
  const auto c = mmkd::distill::ideal_map(qe, ke, {}, causal).contiguous();
  EXPECT_EQ(row(c, 0, 0), (std::vector<float>{1, 0, 0, 0}));
  EXPECT_EQ(row(c, 0, 2), events);
  // The ideal map scores full mass under event_mass.
  const auto r = mmkd::distill::event_mass(z, qe, ke, padding);
  EXPECT_NEAR(r.mass, 2.0 / 3.0, 1e-6);  // rows (0,0),(0,2) mass 1; (1,0) mass 0
}

TEST(DownsampleEvents, HandExampleAnyAndMajority) {
  const auto events = bools({{0, 0, 1, 0, 0, 0, 0, 1, 1, 1}});
  // kernel 3, stride 2, no padding: windows [0,2] [2,4] [4,6] [6,8], event counts 1 1 0 2.
  const auto any = mmkd::distill::downsample_events(events, 3, 2, 4);
  EXPECT_TRUE(torch::equal(any, bools({{1, 1, 0, 1}})));
  const auto most = mmkd::distill::downsample_events(events, 3, 2, 4, 0, WindowRule::kMajority);
  EXPECT_TRUE(torch::equal(most, bools({{0, 0, 0, 1}})));
  // Padding 1: windows [-1,1] [1,3] [3,5] [5,7] [7,9]: counts 0 1 0 1 3 of real 2 3 3 3 3.
  EXPECT_TRUE(
      torch::equal(mmkd::distill::downsample_events(events, 3, 2, 5, 1), bools({{0, 1, 0, 1, 1}})));
  EXPECT_TRUE(
      torch::equal(mmkd::distill::downsample_events(events, 3, 2, 5, 1, WindowRule::kMajority),
                   bools({{0, 0, 0, 0, 1}})));
  // Window of 2 with padding: the first window [-1,0] has 1 real step; an event there is all.
  const auto edge = bools({{1, 0, 0, 0}});
  EXPECT_TRUE(
      torch::equal(mmkd::distill::downsample_events(edge, 2, 2, 3, 1, WindowRule::kMajority),
                   bools({{1, 0, 0}})));
  EXPECT_THROW(mmkd::distill::downsample_events(events, 3, 2, 5), mmkd::Error);
}

TEST(ResampleEvents, NearestAtHalfPixelCentres) {
  const auto events = bools({{1, 0, 0, 1}, {0, 1, 1, 0}});
  EXPECT_TRUE(torch::equal(mmkd::distill::resample_events(events, 8),
                           bools({{1, 1, 0, 0, 0, 0, 1, 1}, {0, 0, 1, 1, 1, 1, 0, 0}})));
  EXPECT_TRUE(torch::equal(mmkd::distill::resample_events(events, 2), bools({{0, 1}, {1, 0}})));
  EXPECT_TRUE(torch::equal(mmkd::distill::resample_events(events, 4), events));
  EXPECT_THROW(mmkd::distill::resample_events(events, 0), mmkd::Error);
}

}  // namespace
