// Multi-head attention against a hand-written computation, and its masks and taps.
#include "mmkd/nn/multihead_attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "../support/numbers.h"
#include "mmkd/core/error.h"
#include "mmkd/nn/transformer_encoder.h"

namespace {

using mmkd::nn::MultiheadAttention;
using mmkd::nn::MultiheadAttentionOptions;
using mmkd::nn::TapRequest;

using mmkd::testing::kInf;

struct Manual {
  torch::Tensor output, logits, map;
};

// Attention written out with plain tensor ops: projections, per-head QK^T/sqrt(d_k), masks, a
// row-by-row softmax, the weighted sum of V, concatenation of heads and the out projection.
Manual manual_attention(const torch::Tensor& query, const torch::Tensor& key,
                        const torch::Tensor& value, const torch::Tensor& w, const torch::Tensor& b,
                        const torch::Tensor& wo, const torch::Tensor& bo, int64_t heads,
                        const torch::Tensor& attn_mask, const torch::Tensor& key_padding) {
  const int64_t batch = query.size(0), tq = query.size(1), tk = key.size(1), d = query.size(2);
  const int64_t dk = d / heads;
  const auto q = torch::matmul(query, w.slice(0, 0, d).t()) + b.slice(0, 0, d);
  const auto k = torch::matmul(key, w.slice(0, d, 2 * d).t()) + b.slice(0, d, 2 * d);
  const auto v = torch::matmul(value, w.slice(0, 2 * d).t()) + b.slice(0, 2 * d);
  Manual m;
  m.logits = torch::zeros({batch, heads, tq, tk}, query.options());
  auto probs = torch::zeros({batch, heads, tq, tk}, query.options());
  auto concat = torch::zeros({batch, tq, d}, query.options());
  for (int64_t bi = 0; bi < batch; ++bi) {
    for (int64_t h = 0; h < heads; ++h) {
      const auto qh = q[bi].slice(1, h * dk, (h + 1) * dk);
      const auto kh = k[bi].slice(1, h * dk, (h + 1) * dk);
      const auto vh = v[bi].slice(1, h * dk, (h + 1) * dk);
      auto s = torch::matmul(qh, kh.t()) / std::sqrt(double(dk));
      if (attn_mask.defined()) s = s + attn_mask;
      for (int64_t j = 0; j < tk; ++j) {
        if (key_padding.defined() && key_padding[bi][j].item<bool>()) s.select(1, j).fill_(-kInf);
      }
      m.logits[bi][h].copy_(s);
      auto p = torch::zeros({tq, tk}, query.options());
      for (int64_t i = 0; i < tq; ++i) {
        const auto row = s[i];
        const double mx = row.max().item<double>();
        if (mx == -kInf) continue;  // no visible key: zero row
        const auto e = torch::exp(row - mx);
        p[i].copy_(e / e.sum());
      }
      probs[bi][h].copy_(p);
      concat[bi].slice(1, h * dk, (h + 1) * dk).copy_(torch::matmul(p, vh));
    }
  }
  m.map = probs.mean(1);
  m.output = torch::matmul(concat, wo.t()) + bo;
  return m;
}

MultiheadAttention make_mha(int64_t d, int64_t heads) {
  MultiheadAttention mha(MultiheadAttentionOptions(d, heads));
  mha->to(torch::kDouble);
  mha->eval();
  // Non-zero biases so that they are exercised too.
  torch::NoGradGuard no_grad;
  mha->in_proj_bias.uniform_(-0.5, 0.5);
  mha->out_proj->bias.uniform_(-0.5, 0.5);
  return mha;
}

TEST(MultiheadAttention, MatchesHandComputationCross) {
  torch::manual_seed(1);
  const int64_t d = 8, heads = 2;
  auto mha = make_mha(d, heads);
  const auto opts = torch::TensorOptions().dtype(torch::kDouble);
  const auto query = torch::randn({2, 3, d}, opts);
  const auto key = torch::randn({2, 5, d}, opts);
  const auto value = torch::randn({2, 5, d}, opts);
  const auto mask = mmkd::nn::future_mask(3, 5, opts);
  auto padding = torch::zeros({2, 5}, torch::kBool);
  padding[1][0] = true;
  padding[1][4] = true;
  const auto out = mha->forward(query, key, value, mask, padding, TapRequest::all());
  const auto ref =
      manual_attention(query, key, value, mha->in_proj_weight, mha->in_proj_bias,
                       mha->out_proj->weight, mha->out_proj->bias, heads, mask, padding);
  EXPECT_TRUE(torch::allclose(out.output, ref.output, 0, 1e-6));
  EXPECT_TRUE(torch::allclose(out.map, ref.map, 0, 1e-6));
  EXPECT_TRUE(torch::equal(torch::isinf(out.logits), torch::isinf(ref.logits)));
  const auto finite = torch::isfinite(ref.logits);
  EXPECT_TRUE(
      torch::allclose(out.logits.masked_select(finite), ref.logits.masked_select(finite), 0, 1e-6));
  EXPECT_TRUE(torch::equal(out.post_attention, out.output));
}

TEST(MultiheadAttention, MatchesHandComputationSelf) {
  torch::manual_seed(2);
  const int64_t d = 12, heads = 3;
  auto mha = make_mha(d, heads);
  const auto x = torch::randn({2, 4, d}, torch::kDouble);
  const auto out = mha->forward(x, x, x, {}, {}, TapRequest::all());
  const auto ref = manual_attention(x, x, x, mha->in_proj_weight, mha->in_proj_bias,
                                    mha->out_proj->weight, mha->out_proj->bias, heads, {}, {});
  EXPECT_TRUE(torch::allclose(out.output, ref.output, 0, 1e-6));
  EXPECT_TRUE(torch::allclose(out.logits, ref.logits, 0, 1e-6));
  EXPECT_TRUE(torch::allclose(out.map, ref.map, 0, 1e-6));
}

TEST(MultiheadAttention, ParameterCountIsMulTs) {
  const int64_t d = 40;
  MultiheadAttention mha(MultiheadAttentionOptions(d, 8));
  int64_t total = 0;
  for (const auto& p : mha->parameters()) total += p.numel();
  EXPECT_EQ(total, 4 * d * d + 4 * d);
  EXPECT_EQ(mha->in_proj_weight.sizes(), (std::vector<int64_t>{3 * d, d}));
  EXPECT_TRUE(torch::all(mha->in_proj_bias == 0).item<bool>());
  // Xavier uniform over the packed [3d,d] weight: bound sqrt(6/(3d+d)).
  EXPECT_LE(mha->in_proj_weight.abs().max().item<double>(), std::sqrt(6.0 / (4 * d)) + 1e-7);
}

TEST(MultiheadAttention, NothingCapturedUnlessAsked) {
  MultiheadAttention mha(MultiheadAttentionOptions(8, 2));
  const auto x = torch::randn({1, 3, 8});
  const auto out = mha->forward(x, x, x);
  EXPECT_TRUE(out.output.defined());
  EXPECT_FALSE(out.logits.defined());
  EXPECT_FALSE(out.map.defined());
  EXPECT_FALSE(out.post_attention.defined());
  TapRequest only_map;
  only_map.map = true;
  const auto some = mha->forward(x, x, x, {}, {}, only_map);
  EXPECT_TRUE(some.map.defined());
  EXPECT_FALSE(some.logits.defined());
}

TEST(MultiheadAttention, RowsSumToOnePaddingKeysGetZeroFullyMaskedRowsAreZero) {
  torch::manual_seed(3);
  MultiheadAttention mha(MultiheadAttentionOptions(8, 4));
  mha->eval();
  const auto q = torch::randn({2, 4, 8});
  const auto kv = torch::randn({2, 6, 8});
  auto padding = torch::zeros({2, 6}, torch::kBool);
  padding[0].slice(0, 0, 2).fill_(true);  // sample 0: keys 0,1 padded
  padding[1].fill_(true);                 // sample 1: every key padded
  const auto out = mha->forward(q, kv, kv, {}, padding, TapRequest::all());
  ASSERT_EQ(out.map.sizes(), (std::vector<int64_t>{2, 4, 6}));
  ASSERT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 4, 4, 6}));
  EXPECT_TRUE(torch::allclose(out.map[0].sum(-1), torch::ones({4}), 0, 1e-6));
  EXPECT_TRUE(torch::all(out.map[0].slice(1, 0, 2) == 0).item<bool>());
  EXPECT_TRUE(torch::all(out.map[1] == 0).item<bool>());
  EXPECT_FALSE(torch::any(torch::isnan(out.output)).item<bool>());
  EXPECT_FALSE(torch::any(torch::isnan(out.map)).item<bool>());
  // With no visible key the attended vector is zero, so the output is the out bias.
  EXPECT_TRUE(torch::allclose(out.output[1], mha->out_proj->bias.expand({4, 8})));
}

TEST(MultiheadAttention, GradientsStayFiniteWithFullyMaskedRows) {
  MultiheadAttention mha(MultiheadAttentionOptions(8, 2));
  const auto q = torch::randn({1, 3, 8}, torch::requires_grad());
  const auto kv = torch::randn({1, 3, 8});
  auto padding = torch::ones({1, 3}, torch::kBool);
  mha->forward(q, kv, kv, {}, padding).output.sum().backward();
  EXPECT_TRUE(torch::all(torch::isfinite(mha->in_proj_weight.grad())).item<bool>());
  EXPECT_TRUE(torch::all(torch::isfinite(q.grad())).item<bool>());
}

TEST(MultiheadAttention, FutureMaskMatchesDefinition) {
  for (auto [tq, tk] : {std::pair<int64_t, int64_t>{3, 5}, {5, 3}, {4, 4}}) {
    const auto mask = mmkd::nn::future_mask(tq, tk);
    ASSERT_EQ(mask.sizes(), (std::vector<int64_t>{tq, tk}));
    for (int64_t i = 0; i < tq; ++i) {
      for (int64_t j = 0; j < tk; ++j) {
        const bool masked = j >= i + 1 + std::abs(tk - tq);
        EXPECT_EQ(mask[i][j].item<float>(), masked ? -std::numeric_limits<float>::infinity() : 0.f)
            << tq << "x" << tk << " at " << i << "," << j;
      }
    }
  }
  // 3x5: row 0 sees keys 0..2, row 1 keys 0..3, row 2 all; 5x3: nothing masked.
  const auto m35 = mmkd::nn::future_mask(3, 5);
  EXPECT_TRUE(torch::equal(torch::isinf(m35).sum(1), torch::tensor({2, 1, 0}, torch::kLong)));
  EXPECT_EQ(torch::isinf(m35).sum().item<int64_t>(), 3);
  EXPECT_TRUE(
      torch::equal(torch::isinf(m35[0]).nonzero().flatten(), torch::tensor({3, 4}, torch::kLong)));
  EXPECT_EQ(torch::isinf(mmkd::nn::future_mask(5, 3)).sum().item<int64_t>(), 0);
}

TEST(MultiheadAttention, FutureMaskedMapsAreZeroWhereMasked) {
  MultiheadAttention mha(MultiheadAttentionOptions(8, 2));
  mha->eval();
  const auto q = torch::randn({1, 3, 8});
  const auto kv = torch::randn({1, 5, 8});
  TapRequest taps;
  taps.map = true;
  const auto out = mha->forward(q, kv, kv, mmkd::nn::future_mask(3, 5), {}, taps);
  EXPECT_EQ(out.map[0][0][3].item<float>(), 0.f);
  EXPECT_EQ(out.map[0][0][4].item<float>(), 0.f);
  EXPECT_EQ(out.map[0][1][4].item<float>(), 0.f);
  EXPECT_GT(out.map[0][2][4].item<float>(), 0.f);
  EXPECT_TRUE(torch::allclose(out.map[0].sum(-1), torch::ones({3}), 0, 1e-6));
}

TEST(MaskedSoftmax, TemperatureAndEmptyRows) {
  const float inf = std::numeric_limits<float>::infinity();
  const auto logits = torch::tensor({{1.f, 2.f, -inf}, {-inf, -inf, -inf}});
  const auto p = mmkd::nn::masked_softmax(logits, 2.0);
  const auto expected = torch::softmax(torch::tensor({0.5f, 1.f}), 0);
  EXPECT_TRUE(torch::allclose(p[0].slice(0, 0, 2), expected));
  EXPECT_EQ(p[0][2].item<float>(), 0.f);
  EXPECT_TRUE(torch::all(p[1] == 0).item<bool>());
}

// Padded keys without an empty row take the short way: the same values and gradients as the
// guarded computation written out here; a row hiding every key still gives zeros, not NaN.
TEST(MaskedSoftmax, PaddedRowsMatchTheGuardedComputation) {
  const float inf = std::numeric_limits<float>::infinity();
  torch::manual_seed(2);
  for (const bool empty_row : {false, true}) {
    auto base = torch::randn({2, 3, 4, 5});
    base.select(-1, 4).fill_(-inf);  // a padded key
    if (empty_row) base[1][2][3].fill_(-inf);
    const auto x = base.clone().requires_grad_(true);
    const auto y = base.clone().requires_grad_(true);
    const auto weights = torch::randn({2, 3, 4, 5});
    const auto p = mmkd::nn::masked_softmax(x, 0.5);
    const auto hidden = (y / 0.5).amax(-1, true) == -inf;
    const auto q = torch::softmax((y / 0.5).masked_fill(hidden, 0.0), -1).masked_fill(hidden, 0.0);
    EXPECT_TRUE(torch::equal(p, q)) << "empty row " << empty_row;
    EXPECT_FALSE(torch::isnan(p).any().item<bool>());
    (p * weights).sum().backward();
    (q * weights).sum().backward();
    EXPECT_TRUE(torch::equal(x.grad(), y.grad())) << "empty row " << empty_row;
    if (empty_row) {
      EXPECT_TRUE(torch::all(p[1][2][3] == 0).item<bool>());
    }
  }
}

TEST(MultiheadAttention, DropoutOnlyInTraining) {
  torch::manual_seed(4);
  MultiheadAttention mha(MultiheadAttentionOptions(8, 2).attn_dropout(0.5));
  const auto x = torch::randn({2, 6, 8});
  mha->eval();
  EXPECT_TRUE(torch::equal(mha->forward(x, x, x).output, mha->forward(x, x, x).output));
  mha->train();
  EXPECT_FALSE(torch::equal(mha->forward(x, x, x).output, mha->forward(x, x, x).output));
}

TEST(MultiheadAttention, RejectsBadShapes) {
  EXPECT_THROW(MultiheadAttention(MultiheadAttentionOptions(10, 3)), mmkd::Error);
  MultiheadAttention mha(MultiheadAttentionOptions(8, 2));
  const auto x = torch::randn({1, 3, 8});
  EXPECT_THROW(mha->forward(x, x, x, torch::zeros({2, 3})), mmkd::Error);
  EXPECT_THROW(mha->forward(x, x, x, {}, torch::zeros({1, 4}, torch::kBool)), mmkd::Error);
}

}  // namespace
