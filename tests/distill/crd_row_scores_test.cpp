// CRD row scores read from the banks against the gathered computation and a plain loop; the
// backward's view of entries overwritten between forward and backward.
#include "mmkd/distill/crd_row_scores.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "mmkd/core/error.h"
#include "mmkd/distill/crd.h"

namespace {

using mmkd::distill::crd_row_scores;
using mmkd::distill::CrdLoss;
using mmkd::distill::CrdOptions;
using mmkd::distill::CrdRowLoss;
using mmkd::distill::CrdRowOptions;

struct ScoreCase {
  torch::Tensor bank, candidates, rows, v;
};

// N=12 samples, T=5 rows, E=6; anchors are samples 0..2, their candidates include each other
// (negatives may be other anchors of the batch, whose entries the update overwrites).
ScoreCase make_case() {
  torch::manual_seed(3);
  ScoreCase c;
  c.bank = torch::randn({12, 5, 6});
  c.candidates =
      torch::tensor({0, 1, 7, 2, 9, 1, 0, 4, 11, 2, 2, 0, 5, 1, 8}, torch::kLong).view({3, 5});
  c.rows = torch::tensor({4, 0, 2}, torch::kLong);
  c.v = torch::randn({3, 3, 6}, torch::requires_grad());
  return c;
}

// The gathered computation CrdRowLoss used before (and still uses off the CPU).
torch::Tensor gathered_scores(const ScoreCase& c, const torch::Tensor& bank, double temperature) {
  const int64_t t = bank.size(1), e = bank.size(2);
  const int64_t b = c.candidates.size(0), k1 = c.candidates.size(1), r = c.rows.size(0);
  const auto flat = (c.candidates.unsqueeze(1) * t + c.rows.view({1, r, 1})).reshape({-1});
  const auto g = bank.view({-1, e}).index_select(0, flat).view({b, r, k1, e});
  return torch::exp(torch::matmul(g, c.v.unsqueeze(-1)).squeeze(-1) / temperature);
}

TEST(CrdRowScores, ValuesMatchALoop) {
  const auto c = make_case();
  const double temperature = 0.07;
  const auto s = crd_row_scores(c.bank, c.candidates, c.rows, c.v.detach(), temperature, {});
  ASSERT_EQ(s.sizes(), (std::vector<int64_t>{3, 3, 5}));
  const auto v_values = c.v.detach();
  auto bank = c.bank.accessor<float, 3>();
  auto v = v_values.accessor<float, 3>();
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t k = 0; k < 5; ++k) {
        const int64_t j = c.candidates[b][k].item<int64_t>();
        const int64_t t = c.rows[i].item<int64_t>();
        double d = 0;
        for (int64_t e = 0; e < 6; ++e) d += double(bank[j][t][e]) * double(v[b][i][e]);
        const double want = std::exp(d / temperature);
        EXPECT_NEAR(s[b][i][k].item<double>(), want, 1e-5 * want) << b << "," << i << "," << k;
      }
}

TEST(CrdRowScores, GradientSeesTheBankAsItWasAtForward) {
  const auto c = make_case();
  const auto overwritten = torch::tensor({0, 1, 2}, torch::kLong);
  const auto before = c.bank.clone();
  const auto weights = torch::randn({3, 3, 5});

  auto bank = c.bank.clone();
  const auto s = crd_row_scores(bank, c.candidates, c.rows, c.v, 0.5, overwritten);
  // The momentum update: the anchors' own entries at the scored rows change before backward.
  bank.index_copy_(0, overwritten, torch::randn({3, 5, 6}));
  const auto grad = torch::autograd::grad({(s * weights).sum()}, {c.v})[0];

  const auto s_ref = gathered_scores(c, before, 0.5);
  const auto grad_ref = torch::autograd::grad({(s_ref * weights).sum()}, {c.v})[0];
  EXPECT_TRUE(torch::allclose(s, s_ref, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(grad, grad_ref, 1e-4, 1e-5))
      << (grad - grad_ref).abs().max().item<double>();
  // Without the kept copy the gradient would have read the new entries: the case tests that.
  const auto grad_stale =
      torch::autograd::grad({(gathered_scores(c, bank, 0.5) * weights).sum()}, {c.v})[0];
  EXPECT_FALSE(torch::allclose(grad_stale, grad_ref, 1e-3, 1e-4));
}

TEST(CrdRowScores, AnotherBankChangeBeforeBackwardIsAnError) {
  const auto c = make_case();
  auto bank = c.bank.clone();
  const auto s = crd_row_scores(bank, c.candidates, c.rows, c.v, 0.5, {});
  bank.mul_(2);  // nothing was declared overwritten
  try {
    torch::autograd::grad({s.sum()}, {c.v});
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("memory bank changed between forward and backward"),
              std::string::npos)
        << e.what();
  }
}

TEST(CrdRowScores, RejectsOutOfRangeIndicesAndBadShapes) {
  const auto c = make_case();
  const auto bad = c.candidates.clone();
  bad[1][3] = 12;
  EXPECT_THROW(crd_row_scores(c.bank, bad, c.rows, c.v, 0.5, {}), mmkd::Error);
  EXPECT_THROW(crd_row_scores(c.bank, c.candidates, torch::tensor({5}, torch::kLong),
                              c.v.narrow(1, 0, 1), 0.5, {}),
               mmkd::Error);
  EXPECT_THROW(crd_row_scores(c.bank, c.candidates, c.rows, c.v.narrow(2, 0, 4), 0.5, {}),
               mmkd::Error);
  EXPECT_THROW(crd_row_scores(c.bank.to(torch::kDouble), c.candidates, c.rows, c.v, 0.5, {}),
               mmkd::Error);
}

// The loss, the heads' gradients and the banks agree with the gathered path over training steps
// whose negatives include other anchors of the batch.
TEST(CrdRowScores, CrdRowLossTrainsAsTheGatheredPath) {
  torch::manual_seed(11);
  const auto classes = torch::tensor({0, 1, 0, 1, 2, 2, 0, 1, 2, 0}, torch::kLong);
  CrdRowOptions fused;
  fused.crd.embed_dim = 8;
  fused.crd.num_negatives = 5;
  fused.rows_per_batch = 3;
  CrdRowOptions gathered = fused;
  gathered.crd.fused_scores = false;
  torch::manual_seed(5);
  CrdRowLoss a(6, 4, 7, classes, fused);
  torch::manual_seed(5);
  CrdRowLoss b(6, 4, 7, classes, gathered);
  for (int step = 0; step < 4; ++step) {
    const auto index = torch::tensor({step % 3, 4, 7, 9}, torch::kLong);
    const auto student = torch::randn({4, 7, 6}, torch::requires_grad());
    const auto teacher = torch::randn({4, 7, 4});
    const auto mask = torch::rand({4, 7}) > 0.2;
    const auto negatives = a->sample_negatives(index);
    const auto rows = std::get<0>(torch::randperm(7, torch::kLong).slice(0, 0, 3).sort());
    const auto la = a->forward_with(student, teacher, index, negatives, mask, rows);
    const auto lb = b->forward_with(student, teacher, index, negatives, mask, rows);
    EXPECT_NEAR(la.item<double>(), lb.item<double>(), 1e-4 * std::abs(lb.item<double>()));
    const auto ga =
        torch::autograd::grad({la}, {student, a->embed_student->weight, a->embed_teacher->weight});
    const auto gb =
        torch::autograd::grad({lb}, {student, b->embed_student->weight, b->embed_teacher->weight});
    for (size_t i = 0; i < ga.size(); ++i)
      EXPECT_TRUE(torch::allclose(ga[i], gb[i], 1e-4, 1e-6)) << "step " << step << " grad " << i;
    EXPECT_TRUE(torch::allclose(a->memory_student, b->memory_student, 1e-5, 1e-6));
    EXPECT_TRUE(torch::allclose(a->memory_teacher, b->memory_teacher, 1e-5, 1e-6));
  }
}

// The vector CRD reads its [N,E] banks as one-row banks: the same agreement.
TEST(CrdRowScores, CrdLossTrainsAsTheGatheredPath) {
  const auto classes = torch::tensor({0, 1, 0, 1, 2, 2, 0, 1, 2, 0}, torch::kLong);
  CrdOptions fused;
  fused.embed_dim = 8;
  fused.num_negatives = 5;
  CrdOptions gathered = fused;
  gathered.fused_scores = false;
  torch::manual_seed(5);
  CrdLoss a(6, 4, classes, fused);
  torch::manual_seed(5);
  CrdLoss b(6, 4, classes, gathered);
  for (int step = 0; step < 4; ++step) {
    const auto index = torch::tensor({step % 3, 4, 7, 9}, torch::kLong);
    const auto student = torch::randn({4, 6}, torch::requires_grad());
    const auto teacher = torch::randn({4, 4});
    const auto negatives = a->sample_negatives(index);
    const auto la = a->forward(student, teacher, index, negatives);
    const auto lb = b->forward(student, teacher, index, negatives);
    EXPECT_NEAR(la.item<double>(), lb.item<double>(), 1e-4 * std::abs(lb.item<double>()));
    const auto ga = torch::autograd::grad({la}, {student, a->embed_teacher->weight});
    const auto gb = torch::autograd::grad({lb}, {student, b->embed_teacher->weight});
    for (size_t i = 0; i < ga.size(); ++i)
      EXPECT_TRUE(torch::allclose(ga[i], gb[i], 1e-4, 1e-6)) << "step " << step << " grad " << i;
    EXPECT_TRUE(torch::allclose(a->memory_student, b->memory_student, 1e-5, 1e-6));
    EXPECT_TRUE(torch::allclose(a->memory_teacher, b->memory_teacher, 1e-5, 1e-6));
  }
}

}  // namespace
