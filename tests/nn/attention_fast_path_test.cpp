// The fused CPU attention kernel against the materialising reference path: outputs, gradients,
// masks (future, padding, fully masked rows), dropout, head sizes and thread counts.
#include "mmkd/nn/fused_attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "mmkd/nn/multihead_attention.h"
#include "mmkd/nn/transformer_encoder.h"

namespace {

using mmkd::nn::attention_dropout_keep;
using mmkd::nn::AttentionKernel;
using mmkd::nn::fused_attention;
using mmkd::nn::masked_softmax;

/// Restores the process-wide kernel choice when a test ends.
struct KernelGuard {
  AttentionKernel saved = mmkd::nn::attention_kernel();
  ~KernelGuard() { mmkd::nn::set_attention_kernel(saved); }
};

/// Reference of fused_attention() with plain tensor ops; `keep` (bool [B,H,Tq,Tk]) and p give
/// the dropout.
torch::Tensor reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        int64_t heads, const torch::Tensor& mask, const torch::Tensor& pad,
                        const torch::Tensor& keep = {}, double p = 0) {
  const int64_t b = q.size(0), tq = q.size(1), tk = k.size(1), d = q.size(2), dk = d / heads;
  const auto qh = q.view({b, tq, heads, dk}).transpose(1, 2);
  const auto kh = k.view({b, tk, heads, dk}).transpose(1, 2);
  const auto vh = v.view({b, tk, heads, dk}).transpose(1, 2);
  auto s = torch::matmul(qh, kh.transpose(-2, -1)) / std::sqrt(double(dk));
  if (mask.defined()) s = s + mask;
  if (pad.defined()) {
    s = s.masked_fill(pad.view({b, 1, 1, tk}), -std::numeric_limits<float>::infinity());
  }
  auto w = masked_softmax(s);
  if (keep.defined()) w = w * keep.to(w.dtype()) / (1 - p);
  return torch::matmul(w, vh).transpose(1, 2).reshape({b, tq, d});
}

struct Case {
  int64_t batch, tq, tk, d, heads;
  bool future, padded;
};

struct Inputs {
  torch::Tensor q, k, v, mask, pad;
};

Inputs make_inputs(const Case& c, uint64_t seed) {
  torch::manual_seed(seed);
  Inputs in;
  in.q = torch::randn({c.batch, c.tq, c.d});
  in.k = torch::randn({c.batch, c.tk, c.d});
  in.v = torch::randn({c.batch, c.tk, c.d});
  if (c.future) in.mask = mmkd::nn::future_mask(c.tq, c.tk);
  if (c.padded) {
    in.pad = torch::zeros({c.batch, c.tk}, torch::kBool);
    in.pad[0].slice(0, 0, c.tk / 3).fill_(true);  // front padding, as MOSEI
    if (c.batch > 1) in.pad[1].fill_(true);       // a fully padded sequence: zero rows
  }
  return in;
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, double tol,
                  const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  EXPECT_FALSE(a.isnan().any().item<bool>()) << what;
  const double err = (a - b).abs().max().item<double>();
  EXPECT_LT(err, tol) << what;
}

class FusedAttentionCases : public ::testing::TestWithParam<Case> {};

TEST_P(FusedAttentionCases, ForwardAndGradientsMatchReference) {
  const Case c = GetParam();
  for (double p : {0.0, 0.3}) {
    Inputs in = make_inputs(c, 7);
    const uint64_t seed = 12345;
    const auto keep =
        p > 0 ? attention_dropout_keep(seed, c.batch, c.heads, c.tq, c.tk, p) : torch::Tensor();
    auto q1 = in.q.clone().requires_grad_(), k1 = in.k.clone().requires_grad_(),
         v1 = in.v.clone().requires_grad_();
    auto q2 = in.q.clone().requires_grad_(), k2 = in.k.clone().requires_grad_(),
         v2 = in.v.clone().requires_grad_();
    const auto fused = fused_attention(q1, k1, v1, c.heads, in.mask, in.pad, p, seed);
    const auto ref = reference(q2, k2, v2, c.heads, in.mask, in.pad, keep, p);
    const std::string what = "tq=" + std::to_string(c.tq) + " tk=" + std::to_string(c.tk) +
                             " d=" + std::to_string(c.d) + " p=" + std::to_string(p);
    expect_close(fused, ref, 1e-5, "output " + what);
    const auto g = torch::randn_like(ref);
    (fused * g).sum().backward();
    (ref * g).sum().backward();
    expect_close(q1.grad(), q2.grad(), 1e-4, "grad q " + what);
    expect_close(k1.grad(), k2.grad(), 1e-4, "grad k " + what);
    expect_close(v1.grad(), v2.grad(), 1e-4, "grad v " + what);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, FusedAttentionCases,
    ::testing::Values(Case{2, 17, 17, 40, 8, true, true},   // d_k 5, self, causal, padded
                      Case{3, 9, 33, 30, 5, true, true},    // d_k 6, Tq < Tk (mask offset)
                      Case{2, 33, 9, 64, 8, true, false},   // d_k 8, Tq > Tk (nothing masked)
                      Case{2, 20, 20, 21, 7, false, true},  // d_k 3: the generic kernel
                      Case{1, 5, 40, 80, 8, false, false},  // d_k 10
                      Case{2, 1, 1, 16, 2, true, false}));  // single step

TEST(FusedAttention, NonContiguousPackedProjectionAndNoGradPath) {
  torch::manual_seed(3);
  const auto qkv = torch::randn({2, 12, 3 * 40});
  const auto parts = qkv.chunk(3, -1);  // views with row stride 3d, as the packed in-projection
  const auto mask = mmkd::nn::future_mask(12, 12);
  const auto ref = reference(parts[0], parts[1], parts[2], 8, mask, {});
  {
    c10::InferenceMode guard;
    expect_close(fused_attention(parts[0], parts[1], parts[2], 8, mask), ref, 1e-5, "inference");
  }
  torch::NoGradGuard no_grad;
  expect_close(fused_attention(parts[0], parts[1], parts[2], 8, mask), ref, 1e-5, "no grad");
}

TEST(FusedAttention, ThreadCountDoesNotChangeResults) {
  const Case c{4, 24, 24, 40, 8, true, true};
  const int saved = torch::get_num_threads();
  torch::Tensor out[2], grad[2];
  for (int t : {1, 2}) {
    torch::set_num_threads(t);
    Inputs in = make_inputs(c, 11);
    auto q = in.q.requires_grad_();
    const auto o = fused_attention(q, in.k, in.v, c.heads, in.mask, in.pad, 0.1, 99);
    o.sum().backward();
    out[t - 1] = o.detach();
    grad[t - 1] = q.grad();
  }
  torch::set_num_threads(saved);
  EXPECT_TRUE(torch::equal(out[0], out[1]));
  EXPECT_TRUE(torch::equal(grad[0], grad[1]));
}

TEST(FusedAttention, DropoutMaskRateAndDeterminism) {
  const auto keep = attention_dropout_keep(5, 4, 8, 50, 50, 0.1);
  const double rate = keep.to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(rate, 0.9, 0.01);
  EXPECT_TRUE(torch::equal(keep, attention_dropout_keep(5, 4, 8, 50, 50, 0.1)));
  EXPECT_FALSE(torch::equal(keep, attention_dropout_keep(6, 4, 8, 50, 50, 0.1)));
  EXPECT_TRUE(attention_dropout_keep(5, 1, 1, 4, 4, 0.0).all().item<bool>());
}

TEST(FusedAttention, RefusesWhatItCannotRun) {
  const auto x = torch::randn({1, 4, 8});
  EXPECT_THROW(fused_attention(x.to(torch::kFloat64), x, x, 2), std::exception);
  EXPECT_THROW(fused_attention(x, x, x, 3), std::exception);
  EXPECT_THROW(fused_attention(x, x, x, 2, torch::zeros({3, 4})), std::exception);
}

// The module: same weights, fused vs reference kernel, eval and training (dropout off) modes.
TEST(FusedAttention, MultiheadAttentionModuleMatchesReferencePath) {
  KernelGuard guard;
  torch::manual_seed(1);
  mmkd::nn::MultiheadAttention mha(mmkd::nn::MultiheadAttentionOptions(40, 8).attn_dropout(0.0));
  const auto x = torch::randn({3, 15, 40});
  const auto kv = torch::randn({3, 21, 40});
  auto pad = torch::zeros({3, 21}, torch::kBool);
  pad[2].slice(0, 0, 5).fill_(true);
  const auto mask = mmkd::nn::future_mask(15, 21);
  torch::Tensor out[2], grad[2];
  const AttentionKernel kernels[2] = {AttentionKernel::kReference, AttentionKernel::kFused};
  for (int i = 0; i < 2; ++i) {
    mmkd::nn::set_attention_kernel(kernels[i]);
    mha->zero_grad();
    const auto o = mha(x, kv, kv, mask, pad).output;
    o.pow(2).sum().backward();
    out[i] = o.detach();
    grad[i] = mha->in_proj_weight.grad().clone();
  }
  expect_close(out[1], out[0], 1e-5, "module output");
  expect_close(grad[1], grad[0], 1e-3, "in_proj grad");
}

TEST(FusedAttention, TapsStillMaterialiseMaps) {
  KernelGuard guard;
  mmkd::nn::set_attention_kernel(AttentionKernel::kFused);
  torch::manual_seed(2);
  mmkd::nn::MultiheadAttention mha(mmkd::nn::MultiheadAttentionOptions(40, 8));
  mha->eval();
  const auto x = torch::randn({2, 10, 40});
  mmkd::nn::TapRequest taps;
  taps.map = true;
  taps.logits = true;
  const auto tapped = mha->forward(x, x, x, {}, {}, taps);
  ASSERT_TRUE(tapped.map.defined());
  ASSERT_TRUE(tapped.logits.defined());
  const auto plain = mha->forward(x, x, x);
  EXPECT_FALSE(plain.map.defined());
  expect_close(plain.output, tapped.output, 1e-5, "tapped vs fused output");
}

// A whole encoder, trained one step with dropout: finite, and reproducible under one seed.
TEST(FusedAttention, EncoderTrainingStepIsSeedReproducible) {
  KernelGuard guard;
  mmkd::nn::set_attention_kernel(AttentionKernel::kFused);
  torch::Tensor grads[2];
  for (int run = 0; run < 2; ++run) {
    torch::manual_seed(4);
    mmkd::nn::TransformerEncoder enc(mmkd::nn::TransformerEncoderOptions(40, 8, 2));
    enc->train();
    const auto x = torch::randn({2, 30, 40});
    enc(x).output.sum().backward();
    grads[run] = enc->layers[0]->named_parameters()["self_attn.in_proj_weight"].grad().clone();
  }
  EXPECT_TRUE(torch::isfinite(grads[0]).all().item<bool>());
  EXPECT_TRUE(torch::equal(grads[0], grads[1]));
}

}  // namespace
