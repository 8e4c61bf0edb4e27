#include "mmkd/dist/batch_share.h"

#include "mmkd/core/error.h"
#include "mmkd/dist/process_group.h"

namespace mmkd::dist {

namespace {

double g_share_weight = 0;  ///< 0: no distributed training step is running
ShareRows g_share_rows;

}  // namespace

BatchShare::BatchShare(double weight, ShareRows rows) {
  MMKD_CHECK(weight > 0 && weight <= 1, "BatchShare: weight ", weight, " outside (0,1]");
  MMKD_CHECK(0 <= rows.begin && rows.begin <= rows.end && rows.end <= rows.rows,
             "BatchShare: rows [", rows.begin, ",", rows.end, ") outside a batch of ", rows.rows);
  g_share_weight = weight;
  g_share_rows = rows;
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

std::optional<ShareRows> split_share() {
  if (world() == nullptr || g_share_weight == 0 || g_share_rows.replicated) return std::nullopt;
  return g_share_rows;
}

torch::Tensor gather_rows(const torch::Tensor& part) {
  const auto share = split_share();
  if (!share) return part;
  MMKD_CHECK(part.dim() >= 1 && part.size(0) == share->end - share->begin,
             "gather_rows: expected this share's ", share->end - share->begin, " rows, got ",
             part.sizes());
  std::vector<int64_t> shape = part.sizes().vec();
  shape[0] = share->rows;
  std::vector<torch::Tensor> full{torch::zeros(shape, part.options())};
  full[0].slice(0, share->begin, share->end).copy_(part);
  world()->all_reduce_sum(full, "the rows of the global batch");
  return full[0];
}

torch::Tensor sum_over_shares(const torch::Tensor& value) {
  if (!split_share()) return value;
  std::vector<torch::Tensor> total{value.contiguous().clone()};
  world()->all_reduce_sum(total, "a sum over the global batch");
  return total[0];
}

}  // namespace mmkd::dist
