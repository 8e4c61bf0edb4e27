#include "mmkd/dist/batch_share.h"

#include "mmkd/core/error.h"
#include "mmkd/dist/process_group.h"

namespace mmkd::dist {

namespace {

double g_share_weight = 0;  ///< 0: no distributed training step is running

}  // namespace

BatchShare::BatchShare(double weight) {
  MMKD_CHECK(weight > 0 && weight <= 1, "BatchShare: weight ", weight, " outside (0,1]");
  g_share_weight = weight;
}

BatchShare::~BatchShare() { g_share_weight = 0; }

torch::Tensor batch_mean(const torch::Tensor& sum, const torch::Tensor& count) {
  ProcessGroup* group = world();
  if (group == nullptr || g_share_weight == 0) return sum / count.clamp_min(1).to(sum.dtype());
  std::vector<torch::Tensor> total{count.detach().to(torch::kCPU, torch::kFloat64).reshape({1})};
  group->all_reduce_sum(total, "the global count of a batch mean");
  const double global_count = std::max(1.0, total[0].item<double>());
  return sum * (1.0 / (global_count * g_share_weight));
}

}  // namespace mmkd::dist
