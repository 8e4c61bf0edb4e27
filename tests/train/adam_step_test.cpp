// Adam's two step kernels: the fused one equals torch::optim::Adam's loop on the same state,
// the state is found under LibTorch's own key on both versions, and bad settings are named.
#include "mmkd/train/adam_step.h"

#include <gtest/gtest.h>

#include "mmkd/core/error.h"
#include "mmkd/core/torch_compat.h"

namespace mmkd::train {
namespace {

/// Two parameters and a fixed gradient per step.
struct Problem {
  std::vector<torch::Tensor> params;
  explicit Problem(uint64_t seed) {
    torch::manual_seed(seed);
    params = {torch::randn({4, 3}).requires_grad_(true), torch::randn({5}).requires_grad_(true)};
  }
  void set_grads(int step) {
    torch::manual_seed(100 + step);
    for (auto& p : params) p.mutable_grad() = torch::randn(p.sizes());
  }
};

std::vector<torch::Tensor> train(AdamKernel kernel, double weight_decay) {
  Problem problem(7);
  torch::optim::Adam optimizer(problem.params,
                               torch::optim::AdamOptions(1e-2).weight_decay(weight_decay));
  for (int step = 0; step < 6; ++step) {
    if (step == 3) {  // as the plateau scheduler does
      static_cast<torch::optim::AdamOptions&>(optimizer.param_groups()[0].options()).lr(2e-3);
    }
    problem.set_grads(step);
    adam_step(optimizer, kernel);
  }
  return problem.params;
}

TEST(AdamStep, FusedKernelEqualsTheLoop) {
  if (!compat::has_fused_adam(torch::kCPU)) {
    GTEST_SKIP() << "LibTorch " << compat::torch_version() << " has no CPU fused Adam";
  }
  for (const double decay : {0.0, 0.1}) {
    const auto loop = train(AdamKernel::kLoop, decay);
    const auto fused = train(AdamKernel::kFused, decay);
    for (size_t i = 0; i < loop.size(); ++i) {
      EXPECT_TRUE(torch::allclose(loop[i], fused[i], 1e-5, 1e-7))
          << "parameter " << i << ", weight decay " << decay << ", max diff "
          << (loop[i] - fused[i]).abs().max().item<double>();
    }
    // And both moved the parameters.
    EXPECT_FALSE(torch::allclose(loop[0], Problem(7).params[0]));
  }
}

TEST(AdamStep, StateIsTheOptimizersOwn) {
  Problem problem(1);
  torch::optim::Adam optimizer(problem.params, torch::optim::AdamOptions(1e-2));
  EXPECT_EQ(compat::find_adam_param_state(optimizer, problem.params[0]), nullptr);
  problem.set_grads(0);
  optimizer.step();
  optimizer.step();
  // The state torch::optim::Adam made is found under its own key (a string on 1.13, a pointer
  // on 2.x), so a fused step continues it instead of starting again.
  auto* state = compat::find_adam_param_state(optimizer, problem.params[0]);
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->step(), 2);
  EXPECT_EQ(&compat::adam_param_state(optimizer, problem.params[0]), state);
  EXPECT_EQ(optimizer.state().size(), 2u);
}

TEST(AdamStep, ZeroGradInPlaceKeepsTheTensors) {
  Problem problem(2);
  torch::optim::Adam optimizer(problem.params, torch::optim::AdamOptions(1e-2));
  problem.set_grads(0);
  const void* before = problem.params[0].grad().data_ptr();
  compat::zero_grad_in_place(optimizer);
  ASSERT_TRUE(problem.params[0].grad().defined());
  EXPECT_EQ(problem.params[0].grad().data_ptr(), before);
  EXPECT_EQ(problem.params[0].grad().abs().sum().item<double>(), 0.0);
}

TEST(AdamStep, SettingsAreCheckedByName) {
  EXPECT_EQ(resolve_adam_kernel("auto", torch::kCPU), AdamKernel::kLoop);
  EXPECT_EQ(resolve_adam_kernel("loop", torch::kCPU), AdamKernel::kLoop);
  try {
    resolve_adam_kernel("fast", torch::kCPU);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'train.adam': expected auto, loop or fused, got 'fast'"),
              std::string::npos)
        << e.what();
  }
  if (compat::has_fused_adam(torch::kCPU)) {
    EXPECT_EQ(resolve_adam_kernel("fused", torch::kCPU), AdamKernel::kFused);
  } else {
    try {
      resolve_adam_kernel("fused", torch::kCPU);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("has no fused Adam kernel for cpu"), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace mmkd::train
