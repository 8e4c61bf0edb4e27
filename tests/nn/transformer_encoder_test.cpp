// MulT's transformer encoder against a hand-written layer stack; taps, masks, dropout, gradients.
#include "mmkd/nn/transformer_encoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "../support/numbers.h"

namespace {

using mmkd::nn::TapRequest;
using mmkd::nn::TransformerEncoder;
using mmkd::nn::TransformerEncoderOptions;

using mmkd::testing::kInf;

torch::Tensor manual_layer_norm(const torch::Tensor& x, const torch::Tensor& w,
                                const torch::Tensor& b) {
  const auto mean = x.mean(-1, true);
  const auto var = (x - mean).pow(2).mean(-1, true);  // biased, as LayerNorm
  return (x - mean) / torch::sqrt(var + 1e-5) * w + b;
}

// Softmax row by row; a row without any finite entry becomes zeros.
torch::Tensor manual_softmax_rows(const torch::Tensor& s) {
  auto p = torch::zeros_like(s);
  for (int64_t i = 0; i < s.size(0); ++i) {
    const double mx = s[i].max().item<double>();
    if (mx == -kInf) continue;
    const auto e = torch::exp(s[i] - mx);
    p[i].copy_(e / e.sum());
  }
  return p;
}

struct ManualLayer {
  torch::Tensor output, map;
};

// One pre-norm MulT layer written out. kv undefined = self-attention.
ManualLayer manual_layer(const mmkd::nn::TransformerEncoderLayerImpl& layer, const torch::Tensor& x,
                         const torch::Tensor& kv, const torch::Tensor& mask,
                         const torch::Tensor& key_padding) {
  const int64_t batch = x.size(0), tq = x.size(1), d = x.size(2);
  const int64_t heads = layer.options.num_heads(), dk = d / heads;
  const auto& ln0 = layer.layer_norm0;
  const auto q_in = manual_layer_norm(x, ln0->weight, ln0->bias);
  const auto k_in = kv.defined() ? manual_layer_norm(kv, ln0->weight, ln0->bias) : q_in;
  const int64_t tk = k_in.size(1);
  const auto& w = layer.self_attn->in_proj_weight;
  const auto& b = layer.self_attn->in_proj_bias;
  const auto q = torch::matmul(q_in, w.slice(0, 0, d).t()) + b.slice(0, 0, d);
  const auto k = torch::matmul(k_in, w.slice(0, d, 2 * d).t()) + b.slice(0, d, 2 * d);
  const auto v = torch::matmul(k_in, w.slice(0, 2 * d).t()) + b.slice(0, 2 * d);
  auto concat = torch::zeros({batch, tq, d}, x.options());
  auto map = torch::zeros({batch, tq, tk}, x.options());
  for (int64_t bi = 0; bi < batch; ++bi) {
    for (int64_t h = 0; h < heads; ++h) {
      const auto cols = [&](const torch::Tensor& t) {
        return t[bi].slice(1, h * dk, (h + 1) * dk);
      };
      auto s = torch::matmul(cols(q), cols(k).t()) / std::sqrt(double(dk));
      if (mask.defined()) s = s + mask;
      for (int64_t j = 0; j < tk; ++j) {
        if (key_padding.defined() && key_padding[bi][j].item<bool>()) s.select(1, j).fill_(-kInf);
      }
      const auto p = manual_softmax_rows(s);
      map[bi] += p / double(heads);
      concat[bi].slice(1, h * dk, (h + 1) * dk).copy_(torch::matmul(p, cols(v)));
    }
  }
  const auto& out_proj = layer.self_attn->out_proj;
  const auto attended = torch::matmul(concat, out_proj->weight.t()) + out_proj->bias;
  const auto h1 = x + attended;
  const auto n1 = manual_layer_norm(h1, layer.layer_norm1->weight, layer.layer_norm1->bias);
  const auto f = torch::relu(torch::matmul(n1, layer.fc1->weight.t()) + layer.fc1->bias);
  const auto h2 = h1 + torch::matmul(f, layer.fc2->weight.t()) + layer.fc2->bias;
  return {h2, map};
}

torch::Tensor manual_embed(const torch::Tensor& x) {
  const int64_t t = x.size(1), d = x.size(2);
  auto pos = torch::zeros({t, d}, x.options());
  const int64_t half = d / 2;
  for (int64_t p = 1; p <= t; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = double(p) * std::exp(-double(i) * std::log(10000.0) / double(half - 1));
      pos[p - 1][i] = std::sin(angle);
      pos[p - 1][half + i] = std::cos(angle);
    }
  }
  return x * std::sqrt(double(d)) + pos;
}

TransformerEncoder make_encoder(int64_t d, int64_t heads, int64_t layers) {
  TransformerEncoder encoder(TransformerEncoderOptions(d, heads, layers));
  encoder->to(torch::kDouble);
  encoder->eval();
  torch::NoGradGuard no_grad;
  for (auto& p : encoder->parameters()) p.add_(torch::randn_like(p) * 0.1);  // biases, LN too
  return encoder;
}

TEST(TransformerEncoder, SinusoidalPositionsFollowFairseq) {
  const auto table = mmkd::nn::sinusoidal_positions(4, 6);
  ASSERT_EQ(table.sizes(), (std::vector<int64_t>{4, 6}));
  // Position 1, frequency index 1 of 3: exp(-log(10000)/2) = 0.01.
  EXPECT_NEAR(table[0][0].item<float>(), std::sin(1.0), 1e-6);
  EXPECT_NEAR(table[0][1].item<float>(), std::sin(0.01), 1e-6);
  EXPECT_NEAR(table[0][3].item<float>(), std::cos(1.0), 1e-6);
  EXPECT_NEAR(table[3][4].item<float>(), std::cos(0.04), 1e-6);
  const auto odd = mmkd::nn::sinusoidal_positions(3, 5);
  EXPECT_TRUE(torch::all(odd.select(1, 4) == 0).item<bool>());
}

TEST(TransformerEncoder, OneSelfAttentionLayerMatchesHandComputation) {
  torch::manual_seed(10);
  const int64_t d = 8;
  auto encoder = make_encoder(d, 2, 1);
  const auto x = torch::randn({2, 5, d}, torch::kDouble);
  auto padding = torch::zeros({2, 5}, torch::kBool);
  padding[1].slice(0, 0, 2).fill_(true);
  const auto out = encoder->forward(x, {}, padding, {}, TapRequest::all());
  const auto embedded = manual_embed(x);
  const auto& layer = *encoder->layers->ptr<mmkd::nn::TransformerEncoderLayerImpl>(0);
  const auto ref =
      manual_layer(layer, embedded, {}, mmkd::nn::future_mask(5, 5, x.options()), padding);
  const auto final_ref =
      manual_layer_norm(ref.output, encoder->layer_norm->weight, encoder->layer_norm->bias);
  EXPECT_TRUE(torch::allclose(out.output, final_ref, 0, 1e-6));
  ASSERT_EQ(out.taps.size(), 1u);
  EXPECT_TRUE(torch::allclose(out.taps[0].map, ref.map, 0, 1e-6));
  EXPECT_TRUE(torch::allclose(out.taps[0].output, ref.output, 0, 1e-6));
  // Causal mask + two padded leading keys: sample 1's rows 0 and 1 see no key.
  EXPECT_TRUE(torch::all(out.taps[0].map[1].slice(0, 0, 2) == 0).item<bool>());
  EXPECT_FALSE(torch::any(torch::isnan(out.output)).item<bool>());
}

TEST(TransformerEncoder, CrossModalStackMatchesHandComputationWithFixedKeys) {
  torch::manual_seed(11);
  const int64_t d = 8;
  auto encoder = make_encoder(d, 4, 2);
  const auto x = torch::randn({2, 3, d}, torch::kDouble);
  const auto kv = torch::randn({2, 5, d}, torch::kDouble);
  auto kv_padding = torch::zeros({2, 5}, torch::kBool);
  kv_padding[0][4] = true;
  const auto out = encoder->forward(x, kv, {}, kv_padding, TapRequest::all());
  auto h = manual_embed(x);
  const auto source = manual_embed(kv);  // the same embedded keys/values at every layer
  const auto mask = mmkd::nn::future_mask(3, 5, x.options());
  for (int64_t i = 0; i < 2; ++i) {
    const auto& layer = *encoder->layers->ptr<mmkd::nn::TransformerEncoderLayerImpl>(i);
    const auto ref = manual_layer(layer, h, source, mask, kv_padding);
    EXPECT_TRUE(torch::allclose(out.taps[i].map, ref.map, 0, 1e-6)) << "layer " << i;
    h = ref.output;
  }
  const auto final_ref =
      manual_layer_norm(h, encoder->layer_norm->weight, encoder->layer_norm->bias);
  EXPECT_TRUE(torch::allclose(out.output, final_ref, 0, 1e-6));
  EXPECT_TRUE(torch::all(out.taps[0].map[0].select(1, 4) == 0).item<bool>());
}

TEST(TransformerEncoder, TapShapesAndNoTapsByDefault) {
  TransformerEncoder encoder(TransformerEncoderOptions(16, 4, 3));
  const auto x = torch::randn({2, 7, 16});
  const auto kv = torch::randn({2, 4, 16});
  EXPECT_TRUE(encoder->forward(x, kv).taps.empty());
  const auto out = encoder->forward(x, kv, {}, {}, TapRequest::all());
  ASSERT_EQ(out.taps.size(), 3u);
  for (const auto& t : out.taps) {
    EXPECT_EQ(t.logits.sizes(), (std::vector<int64_t>{2, 4, 7, 4}));
    EXPECT_EQ(t.map.sizes(), (std::vector<int64_t>{2, 7, 4}));
    EXPECT_EQ(t.post_attention.sizes(), (std::vector<int64_t>{2, 7, 16}));
    EXPECT_EQ(t.output.sizes(), (std::vector<int64_t>{2, 7, 16}));
  }
  TapRequest maps;
  maps.map = true;
  const auto some = encoder->forward(x, {}, {}, {}, maps);
  EXPECT_EQ(some.taps[0].map.sizes(), (std::vector<int64_t>{2, 7, 7}));
  EXPECT_FALSE(some.taps[0].logits.defined());
  EXPECT_FALSE(some.taps[0].output.defined());
}

TEST(TransformerEncoder, ZeroStepsAreDerivedPaddingKeys) {
  TransformerEncoder encoder(TransformerEncoderOptions(8, 2, 1).future_mask(false));
  encoder->eval();
  auto kv = torch::randn({1, 6, 8});
  kv[0].slice(0, 0, 3).zero_();  // front padding, as MOSEI
  TapRequest maps;
  maps.map = true;
  const auto out = encoder->forward(torch::randn({1, 4, 8}), kv, {}, {}, maps);
  EXPECT_TRUE(torch::all(out.taps[0].map[0].slice(1, 0, 3) == 0).item<bool>());
  EXPECT_TRUE(torch::allclose(out.taps[0].map[0].sum(-1), torch::ones({4}), 0, 1e-6));
  TransformerEncoder unmasked(
      TransformerEncoderOptions(8, 2, 1).future_mask(false).mask_padding(false));
  unmasked->eval();
  const auto all_keys = unmasked->forward(torch::randn({1, 4, 8}), kv, {}, {}, maps);
  EXPECT_TRUE(torch::all(all_keys.taps[0].map[0].slice(1, 0, 3) > 0).item<bool>());
}

TEST(TransformerEncoder, LastRowOnlyEqualsTheFullStacksLastRow) {
  torch::manual_seed(21);
  for (const bool cross : {false, true}) {
    SCOPED_TRACE(cross ? "cross-modal" : "self-attention");
    TransformerEncoder encoder(TransformerEncoderOptions(16, 4, 3));
    encoder->eval();
    const auto x = torch::randn({3, 9, 16});
    const auto kv = cross ? torch::randn({3, 6, 16}) : torch::Tensor();
    auto padding = torch::zeros({3, cross ? 6 : 9}, torch::kBool);
    padding[1].slice(0, 0, 2).fill_(true);  // front padding of one sample's keys
    const auto full = encoder->forward(x, kv, cross ? torch::Tensor() : padding,
                                       cross ? padding : torch::Tensor());
    const auto last = encoder->forward(x, kv, cross ? torch::Tensor() : padding,
                                       cross ? padding : torch::Tensor(), {}, true);
    ASSERT_EQ(last.output.sizes(), (std::vector<int64_t>{3, 1, 16}));
    EXPECT_TRUE(torch::allclose(last.output.select(1, 0), full.output.select(1, -1), 1e-5, 1e-5));
    // The row must still see every key: a change in the first key step moves it (in self form
    // the keys are the earlier layers' rows, in cross form the fixed source).
    auto x2 = x.clone();
    auto kv2 = cross ? kv.clone() : kv;
    (cross ? kv2 : x2).select(1, 0).add_(torch::randn({16}));  // not uniform: LayerNorm'd hide it
    const auto moved = encoder->forward(x2, kv2, {}, {}, {}, true);
    EXPECT_FALSE(torch::allclose(moved.output, encoder->forward(x, kv, {}, {}, {}, true).output));
  }
  TransformerEncoder encoder(TransformerEncoderOptions(8, 2, 1));
  EXPECT_THROW(encoder->forward(torch::randn({1, 4, 8}), {}, {}, {}, TapRequest::all(), true),
               std::exception);
}

// Why every cross-modal layer may compute the read-out row alone while a self-attention stack
// may not: the last row of a cross-modal stack does not depend on the earlier query rows.
TEST(TransformerEncoder, CrossModalLastRowIgnoresEarlierQueryRows) {
  torch::manual_seed(22);
  for (const int64_t tk : {4, 7, 12}) {  // Tk below, near and above Tq = 7 (future mask offsets)
    SCOPED_TRACE(tk);
    TransformerEncoder encoder(TransformerEncoderOptions(16, 4, 3));
    encoder->eval();
    const auto x = torch::randn({2, 7, 16});
    const auto kv = torch::randn({2, tk, 16});
    auto x2 = x.clone();
    x2.slice(1, 0, 6).add_(torch::randn({2, 6, 16}));
    const auto full = encoder->forward(x, kv).output.select(1, -1);
    EXPECT_TRUE(torch::allclose(encoder->forward(x2, kv).output.select(1, -1), full, 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(encoder->forward(x, kv, {}, {}, {}, true).output.select(1, 0), full,
                                1e-5, 1e-5));
    // In self form the same change moves the last row.
    EXPECT_FALSE(torch::allclose(encoder->forward(x2).output.select(1, -1),
                                 encoder->forward(x).output.select(1, -1), 1e-3, 1e-3));
  }
}

TEST(TransformerEncoder, EvalIsDeterministicTrainingIsNot) {
  TransformerEncoder encoder(TransformerEncoderOptions(8, 2, 2));
  const auto x = torch::randn({2, 5, 8});
  encoder->eval();
  EXPECT_TRUE(torch::equal(encoder->forward(x).output, encoder->forward(x).output));
  encoder->train();
  EXPECT_FALSE(torch::equal(encoder->forward(x).output, encoder->forward(x).output));
}

TEST(TransformerEncoder, GradientsReachEveryParameter) {
  torch::manual_seed(12);
  TransformerEncoder encoder(TransformerEncoderOptions(8, 2, 2));
  encoder->train();
  const auto out = encoder->forward(torch::randn({2, 5, 8}), torch::randn({2, 6, 8}));
  out.output.pow(2).sum().backward();
  for (const auto& p : encoder->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
  }
}

TEST(TransformerEncoder, ParameterCountFormula) {
  for (int64_t d : {8, 40, 80}) {
    TransformerEncoder encoder(TransformerEncoderOptions(d, 8, 4));
    int64_t total = 0;
    for (const auto& p : encoder->parameters()) total += p.numel();
    EXPECT_EQ(total, 4 * (12 * d * d + 13 * d) + 2 * d) << "d=" << d;
  }
}

}  // namespace
