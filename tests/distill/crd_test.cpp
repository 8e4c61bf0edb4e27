// CRD on vectors and per row against RepDistiller's computation written out with plain loops.
#include "mmkd/distill/crd.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "mmkd/core/error.h"

namespace {

using mmkd::distill::CrdLoss;
using mmkd::distill::CrdLossImpl;
using mmkd::distill::CrdOptions;
using mmkd::distill::CrdRowLoss;
using mmkd::distill::CrdRowLossImpl;
using mmkd::distill::CrdRowOptions;

using Mat = std::vector<std::vector<double>>;

Mat to_mat(const torch::Tensor& t) {
  const auto d = t.detach().to(torch::kCPU).to(torch::kDouble).contiguous();
  auto a = d.accessor<double, 2>();
  Mat m(d.size(0), std::vector<double>(d.size(1)));
  for (int64_t i = 0; i < d.size(0); ++i)
    for (int64_t j = 0; j < d.size(1); ++j) m[i][j] = a[i][j];
  return m;
}

std::vector<int64_t> to_ints(const torch::Tensor& t) {
  const auto c = t.to(torch::kCPU).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

void normalise(std::vector<double>& a) {
  const double n = std::sqrt(dot(a, a));
  for (auto& x : a) x /= n;
}

// normalize(W x + b), one row at a time.
Mat embed_ref(const Mat& x, const Mat& weight, const std::vector<double>& bias) {
  Mat out(x.size(), std::vector<double>(weight.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    for (size_t e = 0; e < weight.size(); ++e) out[i][e] = bias[e] + dot(weight[e], x[i]);
    normalise(out[i]);
  }
  return out;
}

// One direction of RepDistiller's ContrastLoss for one anchor, scores already divided by Z.
double nce_ref(const std::vector<double>& p, double n_data, double eps) {
  const double k = static_cast<double>(p.size() - 1);
  const double noise = k / n_data;
  double s = std::log(p[0] / (p[0] + noise + eps));
  for (size_t j = 1; j < p.size(); ++j) s += std::log(noise / (p[j] + noise + eps));
  return -s;
}

struct Heads {
  Mat ws, wt;
  std::vector<double> bs, bt;
};

template <typename Impl>
Heads heads_of(const Impl& m) {
  Heads h;
  h.ws = to_mat(m.embed_student->weight);
  h.wt = to_mat(m.embed_teacher->weight);
  h.bs = to_mat(m.embed_student->bias.unsqueeze(0))[0];
  h.bt = to_mat(m.embed_teacher->bias.unsqueeze(0))[0];
  return h;
}

struct RefOut {
  double loss_sum = 0;  // sum over anchors of both directions' per-anchor terms
  int64_t anchors = 0;
  double z_s = 0, z_t = 0;
  Mat bank_s, bank_t;  // banks after the update
};

// RepDistiller's CRDLoss + ContrastMemory for the anchors `use` of a batch, with loops.
RefOut crd_ref(const Mat& fs, const Mat& ft, const std::vector<int64_t>& index,
               const std::vector<int64_t>& negatives_flat, int64_t k, const Heads& h, Mat bank_s,
               Mat bank_t, double z_s, double z_t, const CrdOptions& o,
               const std::vector<bool>& use) {
  const double n = static_cast<double>(bank_s.size());
  const Mat v = embed_ref(fs, h.ws, h.bs);
  const Mat w = embed_ref(ft, h.wt, h.bt);
  std::vector<std::vector<double>> ss, ts;
  double sum_s = 0, sum_t = 0, count = 0;
  for (size_t b = 0; b < index.size(); ++b) {
    std::vector<double> s, t;
    for (int64_t j = 0; j <= k; ++j) {
      const int64_t c = j == 0 ? index[b] : negatives_flat[b * k + j - 1];
      s.push_back(std::exp(dot(v[b], bank_t[c]) / o.temperature));
      t.push_back(std::exp(dot(w[b], bank_s[c]) / o.temperature));
    }
    if (use[b]) {
      for (int64_t j = 0; j <= k; ++j) sum_s += s[j], sum_t += t[j], count += 1;
    }
    ss.push_back(s);
    ts.push_back(t);
  }
  RefOut r;
  r.z_s = z_s < 0 ? sum_s / count * n : z_s;
  r.z_t = z_t < 0 ? sum_t / count * n : z_t;
  for (size_t b = 0; b < index.size(); ++b) {
    if (!use[b]) continue;
    for (auto& x : ss[b]) x /= r.z_s;
    for (auto& x : ts[b]) x /= r.z_t;
    r.loss_sum += nce_ref(ss[b], n, o.eps) + nce_ref(ts[b], n, o.eps);
    ++r.anchors;
  }
  for (size_t b = 0; b < index.size(); ++b) {
    if (!use[b]) continue;
    auto& rs = bank_s[index[b]];
    auto& rt = bank_t[index[b]];
    for (size_t e = 0; e < rs.size(); ++e) {
      rs[e] = o.momentum * rs[e] + (1 - o.momentum) * v[b][e];
      rt[e] = o.momentum * rt[e] + (1 - o.momentum) * w[b][e];
    }
    normalise(rs);
    normalise(rt);
  }
  r.bank_s = bank_s;
  r.bank_t = bank_t;
  return r;
}

void expect_mat_near(const Mat& a, const Mat& b, double tol, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i)
    for (size_t j = 0; j < a[i].size(); ++j) ASSERT_NEAR(a[i][j], b[i][j], tol) << what << " " << i;
}

torch::Tensor longs(std::vector<int64_t> v) { return torch::tensor(v, torch::kLong); }

// 10 samples of 3 classes.
torch::Tensor small_classes() { return longs({0, 0, 1, 1, 1, 2, 2, 0, 1, 2}); }

CrdOptions small_options() {
  CrdOptions o;
  o.embed_dim = 3;
  o.num_negatives = 4;
  return o;
}

TEST(CrdLoss, MatchesLoopReference) {
  torch::manual_seed(1);
  const auto o = small_options();
  CrdLoss crd(4, 5, small_classes(), o);
  const auto fs = torch::randn({3, 4}), ft = torch::randn({3, 5});
  const auto index = longs({0, 4, 6});
  const auto neg = longs({2, 5, 9, 3, 0, 6, 9, 5, 0, 1, 8, 4});  // [3,4], other classes
  const Heads h = heads_of(*crd);
  const auto bank_s = to_mat(crd->memory_student), bank_t = to_mat(crd->memory_teacher);
  const auto ref = crd_ref(to_mat(fs), to_mat(ft), to_ints(index), to_ints(neg), 4, h, bank_s,
                           bank_t, -1, -1, o, {true, true, true});
  const auto loss = crd->forward(fs, ft, index, neg.view({3, 4}));
  EXPECT_NEAR(loss.item<double>(), ref.loss_sum / 3, 1e-4);
  EXPECT_NEAR(crd->z[0].item<double>(), ref.z_s, 1e-4 * ref.z_s);
  EXPECT_NEAR(crd->z[1].item<double>(), ref.z_t, 1e-4 * ref.z_t);
  expect_mat_near(to_mat(crd->memory_student), ref.bank_s, 1e-5, "student bank");
  expect_mat_near(to_mat(crd->memory_teacher), ref.bank_t, 1e-5, "teacher bank");
}

TEST(CrdLoss, ZIsFixedAtTheFirstBatch) {
  torch::manual_seed(2);
  const auto o = small_options();
  CrdLoss crd(4, 5, small_classes(), o);
  const auto neg = longs({2, 5, 9, 3, 0, 6, 9, 5}).view({2, 4});
  crd->forward(torch::randn({2, 4}), torch::randn({2, 5}), longs({0, 4}), neg);
  const double z_s = crd->z[0].item<double>(), z_t = crd->z[1].item<double>();
  ASSERT_GT(z_s, 0);
  ASSERT_GT(z_t, 0);

  const auto fs = torch::randn({2, 4}) * 3, ft = torch::randn({2, 5}) * 3;
  const auto index = longs({5, 1});
  const auto neg2 = longs({0, 1, 2, 3, 2, 5, 6, 9}).view({2, 4});
  const auto ref =
      crd_ref(to_mat(fs), to_mat(ft), to_ints(index), to_ints(neg2), 4, heads_of(*crd),
              to_mat(crd->memory_student), to_mat(crd->memory_teacher), z_s, z_t, o, {true, true});
  const auto loss = crd->forward(fs, ft, index, neg2);
  EXPECT_NEAR(loss.item<double>(), ref.loss_sum / 2, 1e-4);
  EXPECT_EQ(crd->z[0].item<double>(), z_s);
  EXPECT_EQ(crd->z[1].item<double>(), z_t);
}

TEST(CrdLoss, MemoryUpdateTouchesExactlyTheBatchRows) {
  torch::manual_seed(3);
  auto o = small_options();
  o.momentum = 0.3;  // not 0.5, so that m and 1-m cannot be swapped unnoticed
  CrdLoss crd(4, 5, small_classes(), o);
  const auto before_s = crd->memory_student.clone(), before_t = crd->memory_teacher.clone();
  const auto fs = torch::randn({2, 4}), ft = torch::randn({2, 5});
  const auto index = longs({3, 7});
  const auto neg = longs({0, 5, 6, 9, 2, 4, 5, 6}).view({2, 4});
  const auto ref = crd_ref(to_mat(fs), to_mat(ft), to_ints(index), to_ints(neg), 4, heads_of(*crd),
                           to_mat(before_s), to_mat(before_t), -1, -1, o, {true, true});
  crd->forward(fs, ft, index, neg);
  for (int64_t i = 0; i < 10; ++i) {
    const bool own = i == 3 || i == 7;
    EXPECT_EQ(torch::equal(crd->memory_student[i], before_s[i]), !own) << i;
    EXPECT_EQ(torch::equal(crd->memory_teacher[i], before_t[i]), !own) << i;
    if (own) {
      EXPECT_NEAR(crd->memory_student[i].norm().item<double>(), 1.0, 1e-6);
    }
  }
  expect_mat_near(to_mat(crd->memory_student), ref.bank_s, 1e-5, "student bank");
  expect_mat_near(to_mat(crd->memory_teacher), ref.bank_t, 1e-5, "teacher bank");
}

TEST(CrdLoss, BanksStartUniformInRepDistillersRange) {
  torch::manual_seed(4);
  CrdOptions o;  // embed_dim 128
  CrdLoss crd(8, 8, torch::randint(0, 7, {500}, torch::kLong), o);
  const double stdv = 1.0 / std::sqrt(128.0 / 3.0);
  EXPECT_EQ(crd->memory_student.sizes(), (std::vector<int64_t>{500, 128}));
  EXPECT_LE(crd->memory_student.abs().max().item<double>(), stdv);
  EXPECT_GT(crd->memory_student.abs().max().item<double>(), 0.95 * stdv);
  EXPECT_NEAR(crd->memory_teacher.mean().item<double>(), 0.0, 0.01);
  EXPECT_TRUE((crd->z == -1).all().item<bool>());
}

TEST(CrdLoss, NegativesNeverShareTheAnchorsClass) {
  torch::manual_seed(5);
  const auto classes = torch::randint(0, 7, {300}, torch::kLong);
  const auto counts = torch::bincount(classes);
  CrdOptions o;
  o.embed_dim = 8;  // num_negatives 16384 is capped by the smallest other-class pool
  CrdLoss crd(4, 4, classes, o);
  EXPECT_EQ(crd->num_negatives(), 300 - counts.max().item<int64_t>());
  const auto cls = to_ints(classes);
  auto gen = at::detail::createCPUGenerator(11);
  for (int rep = 0; rep < 5; ++rep) {
    const auto index = torch::randperm(300, torch::kLong).slice(0, 0, 32);
    const auto neg = crd->sample_negatives(index, gen);
    ASSERT_EQ(neg.sizes(), (std::vector<int64_t>{32, crd->num_negatives()}));
    const auto idx = to_ints(index), ng = to_ints(neg);
    for (int64_t b = 0; b < 32; ++b) {
      std::set<int64_t> seen;
      for (int64_t j = 0; j < crd->num_negatives(); ++j) {
        const int64_t s = ng[b * crd->num_negatives() + j];
        ASSERT_NE(cls[s], cls[idx[b]]);
        seen.insert(s);
      }
      EXPECT_EQ(static_cast<int64_t>(seen.size()), crd->num_negatives());  // no replacement
    }
  }
}

TEST(CrdLoss, SingleClassFallsBackToAnyOtherSample) {
  CrdOptions o = small_options();
  CrdLoss crd(4, 4, torch::zeros({6}, torch::kLong), o);
  EXPECT_EQ(crd->num_negatives(), 4);
  const auto neg = crd->sample_negatives(longs({0, 5}), at::detail::createCPUGenerator(1));
  const auto ng = to_ints(neg);
  for (int j = 0; j < 4; ++j) {
    EXPECT_NE(ng[j], 0);
    EXPECT_NE(ng[4 + j], 5);
  }
}

TEST(CrdLoss, SeedFixesNegativeSampling) {
  torch::manual_seed(6);
  CrdLoss crd(4, 4, torch::randint(0, 7, {200}, torch::kLong), small_options());
  const auto index = longs({1, 2, 3, 50, 100});
  const auto a = crd->sample_negatives(index, at::detail::createCPUGenerator(42));
  const auto b = crd->sample_negatives(index, at::detail::createCPUGenerator(42));
  const auto c = crd->sample_negatives(index, at::detail::createCPUGenerator(43));
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  torch::manual_seed(7);
  const auto d = crd->sample_negatives(index);
  torch::manual_seed(7);
  EXPECT_TRUE(torch::equal(d, crd->sample_negatives(index)));
  // The whole step, sampling included, is reproducible from the seed.
  torch::manual_seed(8);
  CrdLoss x(4, 4, torch::randint(0, 7, {200}, torch::kLong), small_options());
  torch::manual_seed(8);
  CrdLoss y(4, 4, torch::randint(0, 7, {200}, torch::kLong), small_options());
  const auto fs = torch::randn({5, 4}), ft = torch::randn({5, 4});
  const auto lx = x->forward(fs, ft, index, at::detail::createCPUGenerator(9));
  const auto ly = y->forward(fs, ft, index, at::detail::createCPUGenerator(9));
  EXPECT_EQ(lx.item<double>(), ly.item<double>());
}

TEST(CrdLoss, GradientsReachStudentAndBothHeadsNeverBanks) {
  torch::manual_seed(9);
  CrdLoss crd(4, 5, small_classes(), small_options());
  const auto fs = torch::randn({3, 4}, torch::requires_grad());
  const auto ft = torch::randn({3, 5});  // a frozen teacher's features
  crd->forward(fs, ft, longs({0, 4, 6}), at::detail::createCPUGenerator(1)).backward();
  ASSERT_TRUE(fs.grad().defined());
  EXPECT_GT(fs.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(crd->embed_student->weight.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(crd->embed_teacher->weight.grad().abs().sum().item<double>(), 0);
  EXPECT_FALSE(crd->memory_student.requires_grad());
  EXPECT_FALSE(crd->memory_teacher.requires_grad());
  EXPECT_FALSE(crd->memory_student.grad().defined());
  EXPECT_EQ(crd->parameters().size(), 4u);  // two heads' weights and biases only
  EXPECT_EQ(crd->buffers().size(), 4u);     // two banks, z, sample_classes
}

TEST(CrdLoss, EvalModeLeavesStateUntouched) {
  torch::manual_seed(10);
  CrdLoss crd(4, 5, small_classes(), small_options());
  const auto bank = crd->memory_student.clone();
  crd->eval();
  const auto loss = crd->forward(torch::randn({2, 4}), torch::randn({2, 5}), longs({0, 2}),
                                 at::detail::createCPUGenerator(1));
  EXPECT_TRUE(std::isfinite(loss.item<double>()));
  EXPECT_TRUE(torch::equal(bank, crd->memory_student));
  EXPECT_TRUE((crd->z == -1).all().item<bool>());
}

std::string crd_temp_path(const std::string& name) {
  return ::testing::TempDir() + "/mmkd_crd_" + name + ".pt";
}

TEST(CrdLoss, SaveLoadRestoresBanksAndZ) {
  torch::manual_seed(11);
  CrdLoss a(4, 5, small_classes(), small_options());
  a->forward(torch::randn({3, 4}), torch::randn({3, 5}), longs({0, 4, 6}),
             at::detail::createCPUGenerator(1));
  const auto path = crd_temp_path("vector");
  torch::save(a, path);
  torch::manual_seed(12);
  CrdLoss b(4, 5, small_classes(), small_options());
  ASSERT_FALSE(torch::equal(a->memory_student, b->memory_student));
  torch::load(b, path);
  std::remove(path.c_str());
  EXPECT_TRUE(torch::equal(a->memory_student, b->memory_student));
  EXPECT_TRUE(torch::equal(a->memory_teacher, b->memory_teacher));
  EXPECT_TRUE(torch::equal(a->z, b->z));
  EXPECT_TRUE(torch::equal(a->embed_teacher->weight, b->embed_teacher->weight));
  const auto fs = torch::randn({2, 4}), ft = torch::randn({2, 5});
  const auto neg = longs({2, 5, 9, 3, 0, 6, 9, 5}).view({2, 4});
  EXPECT_EQ(a->forward(fs, ft, longs({0, 4}), neg).item<double>(),
            b->forward(fs, ft, longs({0, 4}), neg).item<double>());
  EXPECT_TRUE(torch::equal(a->memory_teacher, b->memory_teacher));
}

TEST(CrdLoss, RejectsBadShapes) {
  CrdLoss crd(4, 5, small_classes(), small_options());
  EXPECT_THROW(crd->forward(torch::randn({2, 3}), torch::randn({2, 5}), longs({0, 1})),
               mmkd::Error);
  EXPECT_THROW(crd->forward(torch::randn({2, 4}), torch::randn({2, 5}), longs({0})), mmkd::Error);
  EXPECT_THROW(CrdLoss(4, 5, torch::zeros({1}, torch::kLong), small_options()), mmkd::Error);
}

// ---------------------------------------------------------------------------------------------
// Per row

CrdRowOptions row_options() {
  CrdRowOptions o;
  o.crd = small_options();
  return o;
}

// Copies heads and banks row t of a row module into a vector module.
void copy_row_into(const CrdRowLossImpl& rows, int64_t t, CrdLossImpl& vec) {
  torch::NoGradGuard no_grad;
  vec.embed_student->weight.copy_(rows.embed_student->weight);
  vec.embed_student->bias.copy_(rows.embed_student->bias);
  vec.embed_teacher->weight.copy_(rows.embed_teacher->weight);
  vec.embed_teacher->bias.copy_(rows.embed_teacher->bias);
  vec.memory_student.copy_(rows.memory_student.select(1, t));
  vec.memory_teacher.copy_(rows.memory_teacher.select(1, t));
}

TEST(CrdRowLoss, EqualsMeanOverRowsOfPerRowVectorCrds) {
  torch::manual_seed(13);
  const int64_t t_rows = 3;
  CrdRowLoss rows(4, 5, t_rows, small_classes(), row_options());
  std::vector<CrdLoss> vecs;
  for (int64_t t = 0; t < t_rows; ++t) {
    vecs.emplace_back(4, 5, small_classes(), small_options());
    copy_row_into(*rows, t, *vecs.back());
  }
  const auto neg = longs({2, 5, 9, 3, 0, 6, 9, 5, 0, 1, 8, 4}).view({3, 4});
  const auto index = longs({0, 4, 6});
  for (int step = 0; step < 2; ++step) {  // the second step runs on the first step's Z
    const auto fs = torch::randn({3, t_rows, 4}), ft = torch::randn({3, t_rows, 5});
    const auto loss = rows->forward_with(fs, ft, index, neg);
    double mean = 0;
    for (int64_t t = 0; t < t_rows; ++t)
      mean += vecs[t]->forward(fs.select(1, t), ft.select(1, t), index, neg).item<double>();
    mean /= t_rows;
    EXPECT_NEAR(loss.item<double>(), mean, 1e-4) << "step " << step;
    for (int64_t t = 0; t < t_rows; ++t) {
      EXPECT_TRUE(
          torch::allclose(rows->memory_student.select(1, t), vecs[t]->memory_student, 1e-5, 1e-6));
      EXPECT_TRUE(
          torch::allclose(rows->memory_teacher.select(1, t), vecs[t]->memory_teacher, 1e-5, 1e-6));
      EXPECT_TRUE(torch::allclose(rows->z.select(1, t), vecs[t]->z, 1e-5));
    }
  }
}

TEST(CrdRowLoss, MaskedRowsAreExcludedFromLossZAndBanks) {
  torch::manual_seed(14);
  const int64_t t_rows = 3, batch = 3, k = 4;
  auto o = row_options();
  o.crd.momentum = 0.8;
  CrdRowLoss rows(4, 5, t_rows, small_classes(), o);
  const auto fs = torch::randn({batch, t_rows, 4}), ft = torch::randn({batch, t_rows, 5});
  const auto index = longs({0, 4, 6});
  const auto neg = longs({2, 5, 9, 3, 0, 6, 9, 5, 0, 1, 8, 4}).view({batch, k});
  // Row 0 valid for samples 1 and 2, row 1 for all, row 2 for none (e.g. a padded step).
  const auto mask = torch::tensor({0, 1, 0, 1, 1, 0, 1, 1, 0}, torch::kBool).view({batch, t_rows});
  const auto bank_s = rows->memory_student.clone(), bank_t = rows->memory_teacher.clone();
  const Heads h = heads_of(*rows);
  double sum = 0;
  int64_t anchors = 0;
  std::vector<RefOut> refs;
  for (int64_t t = 0; t < t_rows; ++t) {
    std::vector<bool> use;
    for (int64_t b = 0; b < batch; ++b) use.push_back(mask[b][t].item<bool>());
    refs.push_back(crd_ref(to_mat(fs.select(1, t)), to_mat(ft.select(1, t)), to_ints(index),
                           to_ints(neg), k, h, to_mat(bank_s.select(1, t)),
                           to_mat(bank_t.select(1, t)), -1, -1, o.crd, use));
    sum += refs.back().loss_sum;
    anchors += refs.back().anchors;
  }
  const auto loss = rows->forward_with(fs, ft, index, neg, mask);
  EXPECT_NEAR(loss.item<double>(), sum / anchors, 1e-4);
  for (int64_t t = 0; t < 2; ++t) {
    EXPECT_NEAR(rows->z[0][t].item<double>(), refs[t].z_s, 1e-4 * refs[t].z_s);
    EXPECT_NEAR(rows->z[1][t].item<double>(), refs[t].z_t, 1e-4 * refs[t].z_t);
    expect_mat_near(to_mat(rows->memory_student.select(1, t)), refs[t].bank_s, 1e-5, "bank s");
    expect_mat_near(to_mat(rows->memory_teacher.select(1, t)), refs[t].bank_t, 1e-5, "bank t");
  }
  EXPECT_EQ(rows->z[0][2].item<double>(), -1.0);  // no valid anchor yet: Z still unset
  EXPECT_TRUE(torch::equal(rows->memory_student.select(1, 2), bank_s.select(1, 2)));
  EXPECT_TRUE(torch::equal(rows->memory_student[0][0], bank_s[0][0]));  // sample 0, row 0 masked
  EXPECT_FALSE(torch::equal(rows->memory_student[4][0], bank_s[4][0]));

  // Gradients of the masked rows' inputs are exactly zero; the others are not.
  const auto fs_g = fs.clone().requires_grad_(true);
  rows->forward_with(fs_g, ft, index, neg, mask).backward();
  EXPECT_EQ(fs_g.grad()[0][0].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(fs_g.grad().select(1, 2).abs().sum().item<double>(), 0.0);
  EXPECT_GT(fs_g.grad()[1][0].abs().sum().item<double>(), 0.0);
  EXPECT_FALSE(rows->memory_student.requires_grad());
  EXPECT_GT(rows->embed_teacher->weight.grad().abs().sum().item<double>(), 0);
}

TEST(CrdRowLoss, RowSubsamplingScoresAndUpdatesOnlyTheDrawnRows) {
  torch::manual_seed(15);
  auto o = row_options();
  o.rows_per_batch = 2;
  CrdRowLoss rows(4, 5, 6, small_classes(), o);
  const auto before = rows->memory_student.clone();
  const auto index = longs({0, 4});
  rows->forward(torch::randn({2, 6, 4}), torch::randn({2, 6, 5}), index, {},
                at::detail::createCPUGenerator(3));
  int64_t changed = 0;
  for (int64_t t = 0; t < 6; ++t) {
    const bool c = !torch::equal(rows->memory_student[0][t], before[0][t]);
    EXPECT_EQ(c, rows->z[0][t].item<double>() > 0) << t;
    changed += c;
  }
  EXPECT_EQ(changed, 2);
  EXPECT_TRUE(torch::equal(rows->memory_student[1], before[1]));  // not in the batch
}

TEST(CrdRowLoss, SaveLoadRestoresBanksAndZ) {
  torch::manual_seed(16);
  CrdRowLoss a(4, 5, 3, small_classes(), row_options());
  a->forward(torch::randn({2, 3, 4}), torch::randn({2, 3, 5}), longs({0, 4}), {},
             at::detail::createCPUGenerator(1));
  const auto path = crd_temp_path("rows");
  torch::save(a, path);
  torch::manual_seed(17);
  CrdRowLoss b(4, 5, 3, small_classes(), row_options());
  torch::load(b, path);
  std::remove(path.c_str());
  EXPECT_TRUE(torch::equal(a->memory_student, b->memory_student));
  EXPECT_TRUE(torch::equal(a->memory_teacher, b->memory_teacher));
  EXPECT_TRUE(torch::equal(a->z, b->z));
  EXPECT_TRUE(torch::equal(a->embed_student->weight, b->embed_student->weight));
}

TEST(CrdRowLoss, MemoryEstimateAndBudget) {
  const CrdRowOptions defaults;
  // small preset: banks 2*2000*48*32*4 bytes = 24.6 MB; the working set adds ~52 MB.
  const int64_t small = CrdRowLossImpl::estimate_bytes(2000, 48, defaults);
  EXPECT_GE(small, 2 * 2000 * 48 * 32 * 4);
  EXPECT_LT(small, int64_t{100} << 20);
  // MOSEI shapes with RepDistiller's 128-d embedding: 8.4 GB of banks alone, refused.
  CrdRowOptions wide;
  wide.crd.embed_dim = 128;
  EXPECT_GT(CrdRowLossImpl::estimate_bytes(16326, 500, wide), int64_t{8} << 30);
  const auto classes = torch::randint(0, 7, {16326}, torch::kLong);
  try {
    CrdRowLoss too_big(40, 40, 500, classes, wide);
    FAIL() << "expected mmkd::Error";
  } catch (const mmkd::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("embed_dim"), std::string::npos) << msg;
    EXPECT_NE(msg.find("memory_budget_bytes"), std::string::npos) << msg;
  }
}

}  // namespace
