// The library's own parallel loops use the threads LibTorch is configured with (a build without
// OpenMP ran the fused attention on one thread whatever the thread count).
#include "mmkd/core/parallelism.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

TEST(Parallelism, ParallelForUsesTheConfiguredThreads) {
  const int before = torch::get_num_threads();
  torch::set_num_threads(2);
  EXPECT_EQ(mmkd::parallel_for_threads(), 2);
  torch::set_num_threads(1);
  EXPECT_EQ(mmkd::parallel_for_threads(), 1);
  torch::set_num_threads(before);
}
