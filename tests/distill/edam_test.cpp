// EDAM's temperature maps, loss and EDAM-T↑ upsampler against plain-loop computations.
#include "mmkd/distill/edam.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "../support/numbers.h"
#include "mmkd/core/error.h"
#include "mmkd/distill/map_upsampler.h"

namespace {

using mmkd::distill::EdamDirection;
using mmkd::distill::MapUpsampler;

using mmkd::testing::kInf;

// Per-head softmax of logits/t over the finite entries of each row, averaged over heads; a row
// without a finite entry stays zero.
torch::Tensor loop_temperature_map(const torch::Tensor& logits, double t) {
  const auto l = logits.detach().to(torch::kDouble).contiguous();
  const auto a = l.accessor<double, 4>();
  const int64_t nb = l.size(0), nh = l.size(1), nq = l.size(2), nk = l.size(3);
  auto out = torch::zeros({nb, nq, nk}, torch::kDouble);
  auto o = out.accessor<double, 3>();
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t h = 0; h < nh; ++h)
      for (int64_t q = 0; q < nq; ++q) {
        double z = 0;
        for (int64_t k = 0; k < nk; ++k)
          if (std::isfinite(a[b][h][q][k])) z += std::exp(a[b][h][q][k] / t);
        if (z == 0) continue;
        for (int64_t k = 0; k < nk; ++k)
          if (std::isfinite(a[b][h][q][k])) o[b][q][k] += std::exp(a[b][h][q][k] / t) / z / nh;
      }
  return out;
}

// Mean over rows where both maps are non-zero of -Σ target log(predicted + eps).
double loop_edam(const torch::Tensor& student, const torch::Tensor& teacher,
                 bool teacher_log_student, double eps = 1e-8) {
  const auto s = student.detach().to(torch::kDouble).contiguous();
  const auto t = teacher.detach().to(torch::kDouble).contiguous();
  const auto sa = s.accessor<double, 3>();
  const auto ta = t.accessor<double, 3>();
  double total = 0;
  int rows = 0;
  for (int64_t b = 0; b < s.size(0); ++b)
    for (int64_t q = 0; q < s.size(1); ++q) {
      double ssum = 0, tsum = 0, f = 0;
      for (int64_t k = 0; k < s.size(2); ++k) {
        ssum += sa[b][q][k];
        tsum += ta[b][q][k];
        f -= teacher_log_student ? ta[b][q][k] * std::log(sa[b][q][k] + eps)
                                 : sa[b][q][k] * std::log(ta[b][q][k] + eps);
      }
      if (ssum > 0 && tsum > 0) {
        total += f;
        ++rows;
      }
    }
  return rows == 0 ? 0.0 : total / rows;
}

// Deterministic [2,2,3,4] logits with masks: sample 0 causal-like (row q sees keys <= q+1),
// sample 1 has key 3 padded and, when `blank_row` >= 0, that query row fully masked.
torch::Tensor example_logits(double phase, int64_t blank_row) {
  auto l =
      torch::sin(torch::arange(48, torch::kDouble) * 0.7 + phase).mul(2.0).reshape({2, 2, 3, 4});
  for (int64_t h = 0; h < 2; ++h) {
    for (int64_t q = 0; q < 3; ++q)
      for (int64_t k = q + 2; k < 4; ++k) l[0][h][q][k] = -kInf;
    for (int64_t q = 0; q < 3; ++q) l[1][h][q][3] = -kInf;
    if (blank_row >= 0)
      for (int64_t k = 0; k < 4; ++k) l[1][h][blank_row][k] = -kInf;
  }
  return l.to(torch::kFloat);
}

TEST(TemperatureMap, MatchesLoopSoftmaxAndHeadAverage) {
  const auto logits = example_logits(0.3, 1);
  for (double t : {1.0, 2.0}) {
    const auto map = mmkd::distill::temperature_map(logits, t);
    ASSERT_EQ(map.sizes(), (std::vector<int64_t>{2, 3, 4}));
    EXPECT_TRUE(
        torch::allclose(map.to(torch::kDouble), loop_temperature_map(logits, t), 1e-5, 1e-6))
        << "t=" << t;
    EXPECT_EQ(map[1][1].abs().sum().item<double>(), 0.0);  // fully masked row → zero row
    EXPECT_FALSE(map.isnan().any().item<bool>());
  }
  // Higher temperature flattens: row 2 of sample 0 is further from one-hot at t=2.
  const auto sharp = mmkd::distill::temperature_map(logits, 1.0);
  const auto flat = mmkd::distill::temperature_map(logits, 2.0);
  EXPECT_LT(flat[0][2].max().item<double>(), sharp[0][2].max().item<double>());
  EXPECT_THROW(mmkd::distill::temperature_map(logits, 0.0), mmkd::Error);
  EXPECT_THROW(mmkd::distill::temperature_map(logits[0], 1.0), mmkd::Error);
}

TEST(EdamLoss, BothDirectionsAndTemperaturesMatchLoops) {
  // Student and teacher have different zero rows (sample 1 row 0 vs row 2): both are excluded.
  const auto student = example_logits(0.0, 0);
  const auto teacher = example_logits(1.1, 2);
  for (double t : {1.0, 2.0}) {
    const auto s_map = loop_temperature_map(student, t);
    const auto t_map = loop_temperature_map(teacher, t);
    for (auto direction : {EdamDirection::kTeacherLogStudent, EdamDirection::kStudentLogTeacher}) {
      const bool tls = direction == EdamDirection::kTeacherLogStudent;
      const double expected = loop_edam(s_map, t_map, tls);
      const auto loss = mmkd::distill::edam_layers_loss({student}, {teacher}, t, direction);
      EXPECT_NEAR(loss.item<double>(), expected, 1e-5) << "t=" << t << " " << to_string(direction);
      // The same through maps.
      const auto direct =
          mmkd::distill::edam_loss(mmkd::distill::temperature_map(student, t),
                                   mmkd::distill::temperature_map(teacher, t), direction);
      EXPECT_NEAR(direct.item<double>(), expected, 1e-5);
    }
  }
  // The two directions differ on this example (they are not symmetric).
  const double a =
      loop_edam(loop_temperature_map(student, 2.0), loop_temperature_map(teacher, 2.0), true);
  const double b =
      loop_edam(loop_temperature_map(student, 2.0), loop_temperature_map(teacher, 2.0), false);
  EXPECT_GT(std::abs(a - b), 1e-3);
}

TEST(EdamLoss, ZeroRowsAreExcludedNotCounted) {
  const auto student = example_logits(0.0, 0);
  const auto teacher = example_logits(1.1, 2);
  const auto s_map = loop_temperature_map(student, 1.0);
  const auto t_map = loop_temperature_map(teacher, 1.0);
  // 6 rows, 2 excluded: the loss is the mean of the 4 others, computed row by row here.
  double total = 0;
  int rows = 0;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t q = 0; q < 3; ++q) {
      if ((b == 1 && q == 0) || (b == 1 && q == 2)) continue;
      double f = 0;
      for (int64_t k = 0; k < 4; ++k)
        f -= t_map[b][q][k].item<double>() * std::log(s_map[b][q][k].item<double>() + 1e-8);
      total += f;
      ++rows;
    }
  EXPECT_EQ(rows, 4);
  const auto loss = mmkd::distill::edam_layers_loss({student}, {teacher}, 1.0);
  EXPECT_NEAR(loss.item<double>(), total / rows, 1e-5);
}

TEST(EdamLoss, LayersAreAveraged) {
  const auto s1 = example_logits(0.0, 0), s2 = example_logits(0.5, -1);
  const auto t1 = example_logits(1.1, 2), t2 = example_logits(2.3, -1);
  const double expected =
      (loop_edam(loop_temperature_map(s1, 2.0), loop_temperature_map(t1, 2.0), true) +
       loop_edam(loop_temperature_map(s2, 2.0), loop_temperature_map(t2, 2.0), true)) /
      2.0;
  const auto loss = mmkd::distill::edam_layers_loss({s1, s2}, {t1, t2}, 2.0);
  EXPECT_NEAR(loss.item<double>(), expected, 1e-5);
  // A teacher entry may be a ready map (ideal-map control): used as given, t does not apply.
  const auto t2_map = loop_temperature_map(t2, 1.0).to(torch::kFloat);
  const double with_map =
      (loop_edam(loop_temperature_map(s1, 2.0), loop_temperature_map(t1, 2.0), true) +
       loop_edam(loop_temperature_map(s2, 2.0), t2_map, true)) /
      2.0;
  EXPECT_NEAR(mmkd::distill::edam_layers_loss({s1, s2}, {t1, t2_map}, 2.0).item<double>(), with_map,
              1e-5);
  EXPECT_THROW(mmkd::distill::edam_layers_loss({s1, s2}, {t1}, 2.0), mmkd::Error);
  EXPECT_THROW(mmkd::distill::edam_layers_loss({}, {}, 2.0), mmkd::Error);
}

TEST(EdamLoss, GradientReachesStudentNeverTeacher) {
  for (auto direction : {EdamDirection::kTeacherLogStudent, EdamDirection::kStudentLogTeacher}) {
    auto student = example_logits(0.0, 0).requires_grad_(true);
    auto teacher = example_logits(1.1, 2).requires_grad_(true);
    const auto loss = mmkd::distill::edam_layers_loss({student}, {teacher}, 2.0, direction);
    loss.backward();
    ASSERT_TRUE(student.grad().defined());
    EXPECT_FALSE(student.grad().isnan().any().item<bool>());
    EXPECT_GT(student.grad().abs().sum().item<double>(), 0.0);
    EXPECT_FALSE(teacher.grad().defined()) << to_string(direction);
    // Teacher maps passed directly are detached too.
    auto t_map = mmkd::distill::temperature_map(example_logits(1.1, 2), 1.0).requires_grad_(true);
    auto s_logits = example_logits(0.0, 0).requires_grad_(true);
    mmkd::distill::edam_loss(mmkd::distill::temperature_map(s_logits, 1.0), t_map, direction)
        .backward();
    EXPECT_FALSE(t_map.grad().defined());
    EXPECT_TRUE(s_logits.grad().defined());
  }
}

TEST(EdamLoss, NoValidRowGivesZeroWithAGraph) {
  auto student = torch::full({1, 2, 2, 3}, -kInf).requires_grad_(true);
  const auto teacher = torch::randn({1, 2, 2, 3});
  const auto loss = mmkd::distill::edam_layers_loss({student}, {teacher}, 1.0);
  EXPECT_EQ(loss.item<double>(), 0.0);
  ASSERT_TRUE(loss.requires_grad());
  loss.backward();
  EXPECT_FALSE(student.grad().isnan().any().item<bool>());
}

TEST(EdamLoss, ShapeMismatchAndDirectionNames) {
  EXPECT_THROW(mmkd::distill::edam_loss(torch::rand({1, 2, 3}), torch::rand({1, 2, 4})),
               mmkd::Error);
  EXPECT_THROW(mmkd::distill::edam_loss(torch::rand({2, 3}), torch::rand({2, 3})), mmkd::Error);
  for (auto direction : {EdamDirection::kTeacherLogStudent, EdamDirection::kStudentLogTeacher})
    EXPECT_EQ(mmkd::distill::parse_edam_direction(to_string(direction)), direction);
  EXPECT_THROW(mmkd::distill::parse_edam_direction("forward"), mmkd::Error);
}

TEST(InterpolationMatrix, HandExamples) {
  const auto up = mmkd::distill::interpolation_matrix(2, 4);
  const auto up_expected =
      torch::tensor({1.0f, 0.0f, 0.75f, 0.25f, 0.25f, 0.75f, 0.0f, 1.0f}).reshape({4, 2});
  EXPECT_TRUE(torch::allclose(up, up_expected));
  const auto down = mmkd::distill::interpolation_matrix(3, 2);
  const auto down_expected =
      torch::tensor({2 / 3.0f, 1 / 3.0f, 0.0f, 0.0f, 1 / 3.0f, 2 / 3.0f}).reshape({2, 3});
  EXPECT_TRUE(torch::allclose(down, down_expected));
  EXPECT_TRUE(torch::equal(mmkd::distill::interpolation_matrix(3, 3), torch::eye(3)));
  // Rows are convex combinations for any pair of lengths.
  for (auto [in, out] : {std::pair<int64_t, int64_t>{50, 500}, {500, 50}, {7, 3}, {1, 5}, {5, 1}}) {
    const auto m = mmkd::distill::interpolation_matrix(in, out);
    EXPECT_TRUE(torch::allclose(m.sum(1), torch::ones({out}), 1e-5, 1e-5)) << in << "->" << out;
    EXPECT_GE(m.min().item<float>(), 0.0f);
  }
}

TEST(MapUpsampler, IdentityWhenShapesAgree) {
  MapUpsampler up(3, 4, 3, 4);
  const auto map = mmkd::distill::temperature_map(example_logits(0.2, 1), 1.0);
  EXPECT_TRUE(torch::allclose(up->forward(map), map, 1e-6, 1e-7));
}

TEST(MapUpsampler, ResizesToRowDistributionsAndKeepsZeroRows) {
  MapUpsampler up(3, 4, 5, 7);
  // Sample 1 row 0 of the teacher is a zero row.
  const auto map = mmkd::distill::temperature_map(example_logits(0.2, 0), 1.0);
  const auto out = up->forward(map);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, 5, 7}));
  EXPECT_GE(out.min().item<float>(), 0.0f);
  const auto sums = out.sum(-1);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t q = 0; q < 5; ++q) {
      // Student row 0 takes only teacher row 0 (half-pixel centre clamps to 0).
      const double expected = (b == 1 && q == 0) ? 0.0 : 1.0;
      EXPECT_NEAR(sums[b][q].item<double>(), expected, 1e-5) << b << "," << q;
    }
  // At initialisation: row-normalised M_q · P · M_k^T, by loops.
  const auto mq = mmkd::distill::interpolation_matrix(3, 5);
  const auto mk = mmkd::distill::interpolation_matrix(4, 7);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 5; ++i) {
      std::vector<double> row(7, 0.0);
      double total = 0;
      for (int64_t j = 0; j < 7; ++j) {
        for (int64_t q = 0; q < 3; ++q)
          for (int64_t k = 0; k < 4; ++k)
            row[j] +=
                mq[i][q].item<double>() * map[b][q][k].item<double>() * mk[j][k].item<double>();
        total += row[j];
      }
      if (total == 0) continue;
      for (int64_t j = 0; j < 7; ++j)
        EXPECT_NEAR(out[b][i][j].item<double>(), row[j] / total, 1e-5);
    }
  EXPECT_THROW(up->forward(torch::rand({2, 4, 4})), mmkd::Error);
}

TEST(MapUpsampler, RowsStayDistributionsWhenWeightsGoNegative) {
  MapUpsampler up(3, 4, 5, 7);
  {
    torch::NoGradGuard no_grad;
    up->key->weight.fill_(-1.0);
  }
  const auto out = up->forward(mmkd::distill::temperature_map(example_logits(0.2, -1), 1.0));
  EXPECT_TRUE(torch::allclose(out.sum(-1), torch::ones({2, 5}), 1e-5, 1e-5));
  EXPECT_FALSE(out.isnan().any().item<bool>());
}

TEST(MapUpsampler, TrainedThroughEdamTeacherDetached) {
  std::vector<MapUpsampler> ups{MapUpsampler(3, 4, 5, 7), MapUpsampler(3, 4, 5, 7)};
  auto student = torch::randn({2, 2, 5, 7}).requires_grad_(true);
  auto student2 = torch::randn({2, 2, 5, 7}).requires_grad_(true);
  auto teacher = example_logits(0.2, 0).requires_grad_(true);
  for (auto direction : {EdamDirection::kTeacherLogStudent, EdamDirection::kStudentLogTeacher}) {
    for (auto& up : ups) up->zero_grad();
    student.mutable_grad() = torch::Tensor();
    const auto loss = mmkd::distill::edam_layers_loss({student, student2}, {teacher, teacher}, ups,
                                                      2.0, direction);
    EXPECT_TRUE(std::isfinite(loss.item<double>()));
    loss.backward();
    for (auto& up : ups) {
      ASSERT_TRUE(up->key->weight.grad().defined());
      ASSERT_TRUE(up->query->weight.grad().defined());
      EXPECT_GT(up->key->weight.grad().abs().sum().item<double>(), 0.0);
      EXPECT_GT(up->query->weight.grad().abs().sum().item<double>(), 0.0);
    }
    EXPECT_GT(student.grad().abs().sum().item<double>(), 0.0);
    EXPECT_FALSE(teacher.grad().defined());
  }
  // One SGD step moves the weights off the interpolation initialisation.
  EXPECT_EQ(ups[0]->drift_penalty().item<double>(), 0.0);
  torch::optim::SGD sgd(ups[0]->parameters(), torch::optim::SGDOptions(0.1));
  sgd.step();
  EXPECT_GT(ups[0]->drift_penalty().item<double>(), 0.0);
  ups[0]->reset_parameters();
  EXPECT_EQ(ups[0]->drift_penalty().item<double>(), 0.0);
  ups[0]->set_trainable(false);
  for (const auto& p : ups[0]->parameters()) EXPECT_FALSE(p.requires_grad());
  std::vector<MapUpsampler> one{ups[0]};
  EXPECT_THROW(mmkd::distill::edam_layers_loss({student, student2}, {teacher, teacher}, one, 2.0),
               mmkd::Error);
}

}  // namespace
