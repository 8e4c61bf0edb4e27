// LibTorch's fused attention path (the CUDA default on 2.x) against the materialising reference
// path on the CPU: outputs and gradients with future and padding masks, rows that see no key.
#include "mmkd/nn/sdpa_attention.h"

#include <gtest/gtest.h>

#include "mmkd/core/error.h"
#include "mmkd/core/torch_compat.h"
#include "mmkd/nn/fused_attention.h"
#include "mmkd/nn/multihead_attention.h"
#include "mmkd/nn/transformer_encoder.h"

namespace {

using mmkd::nn::AttentionKernel;

struct SdpaKernelGuard {
  AttentionKernel saved = mmkd::nn::attention_kernel();
  ~SdpaKernelGuard() { mmkd::nn::set_attention_kernel(saved); }
};

struct Grads {
  torch::Tensor out, dq, dkv;
};

/// Output and input gradients of one multi-head attention module under `kernel`.
Grads run(mmkd::nn::MultiheadAttention& mha, AttentionKernel kernel, const torch::Tensor& q,
          const torch::Tensor& kv, const torch::Tensor& mask, const torch::Tensor& pad) {
  mmkd::nn::set_attention_kernel(kernel);
  auto qi = q.detach().clone().requires_grad_(true);
  auto kvi = kv.detach().clone().requires_grad_(true);
  const auto out = mha->forward(qi, kvi, kvi, mask, pad).output;
  torch::manual_seed(3);
  const auto weight = torch::randn(out.sizes());
  (out * weight).sum().backward();
  return {out.detach(), qi.grad(), kvi.grad()};
}

TEST(SdpaAttention, MatchesTheReferencePathWithMasksAndEmptyRows) {
  if (!mmkd::compat::has_sdpa()) GTEST_SKIP() << "LibTorch " << mmkd::compat::torch_version();
  const SdpaKernelGuard guard;
  for (const bool future : {false, true}) {
    for (const int64_t tk : {5, 9, 12}) {
      torch::manual_seed(1);
      const int64_t batch = 3, tq = 9, d = 16;
      mmkd::nn::MultiheadAttention mha(mmkd::nn::MultiheadAttentionOptions(d, 4).attn_dropout(0.1));
      mha->eval();  // dropout off: the two paths must agree exactly up to rounding
      const auto q = torch::randn({batch, tq, d});
      const auto kv = torch::randn({batch, tk, d});
      const auto mask = future ? mmkd::nn::future_mask(tq, tk) : torch::Tensor();
      // Sample 1 pads its first 4 keys: with the future mask some of its rows see no key.
      auto pad = torch::zeros({batch, tk}, torch::kBool);
      pad[1].slice(0, 0, 4).fill_(true);
      pad[2].fill_(true);  // every key padded: every row is empty
      const Grads ref = run(mha, AttentionKernel::kReference, q, kv, mask, pad);
      const Grads got = run(mha, AttentionKernel::kSdpa, q, kv, mask, pad);
      EXPECT_TRUE(torch::isfinite(got.out).all().item<bool>());
      EXPECT_TRUE(torch::allclose(got.out, ref.out, 1e-5, 1e-5))
          << "future " << future << " tk " << tk << " max diff "
          << (got.out - ref.out).abs().max().item<double>();
      EXPECT_TRUE(torch::allclose(got.dq, ref.dq, 1e-4, 1e-5)) << "dq, tk " << tk;
      EXPECT_TRUE(torch::allclose(got.dkv, ref.dkv, 1e-4, 1e-5)) << "dkv, tk " << tk;
      // A fully padded sample's rows attend to nothing: output is out_proj(0) = the bias.
      EXPECT_TRUE(torch::allclose(got.out[2], mha->out_proj->bias.detach().expand({tq, d})));
    }
  }
}

TEST(SdpaAttention, WithoutMasksEqualsSoftmaxAttention) {
  if (!mmkd::compat::has_sdpa()) GTEST_SKIP() << "LibTorch " << mmkd::compat::torch_version();
  torch::manual_seed(2);
  const auto q = torch::randn({2, 6, 8}), k = torch::randn({2, 7, 8}), v = torch::randn({2, 7, 8});
  const auto got = mmkd::nn::sdpa_attention(q, k, v, /*heads=*/2);
  // By hand: heads are the interleaved halves of the feature axis.
  std::vector<torch::Tensor> heads;
  for (int64_t h = 0; h < 2; ++h) {
    const auto qh = q.slice(2, 4 * h, 4 * h + 4), kh = k.slice(2, 4 * h, 4 * h + 4);
    const auto vh = v.slice(2, 4 * h, 4 * h + 4);
    heads.push_back(torch::softmax(torch::matmul(qh, kh.transpose(1, 2)) / 2.0, -1).matmul(vh));
  }
  EXPECT_TRUE(torch::allclose(got, torch::cat(heads, 2), 1e-5, 1e-6));
}

TEST(SdpaAttention, OnOldLibTorchItSaysWhatItNeeds) {
  if (mmkd::compat::has_sdpa()) GTEST_SKIP() << "LibTorch has it";
  const auto x = torch::randn({1, 2, 4});
  try {
    mmkd::nn::sdpa_attention(x, x, x, 1);
    FAIL() << "expected an error";
  } catch (const mmkd::Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs LibTorch 2.0"), std::string::npos) << e.what();
  }
}

}  // namespace
