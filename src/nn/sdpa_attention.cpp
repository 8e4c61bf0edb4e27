#include "mmkd/nn/sdpa_attention.h"

#include <limits>

#include "mmkd/core/torch_compat.h"

namespace mmkd::nn {

torch::Tensor sdpa_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             int64_t heads, const torch::Tensor& attn_mask,
                             const torch::Tensor& key_padding_mask, double dropout_p) {
  const int64_t batch = q.size(0), tq = q.size(1), tk = k.size(1), d = q.size(2);
  const int64_t head_dim = d / heads;
  const auto split = [&](const torch::Tensor& x, int64_t t) {
    return x.view({batch, t, heads, head_dim}).transpose(1, 2);
  };
  if (!attn_mask.defined() && !key_padding_mask.defined()) {
    // No mask: every row sees every key, and the flash kernel applies.
    return compat::sdpa(split(q, tq), split(k, tk), split(v, tk), {}, dropout_p)
        .transpose(1, 2)
        .reshape({batch, tq, d});
  }
  const float neg_inf = -std::numeric_limits<float>::infinity();
  auto mask = torch::zeros({batch, 1, tq, tk}, q.options().dtype(torch::kFloat32));
  if (attn_mask.defined()) mask = mask + attn_mask.to(torch::kFloat32).view({1, 1, tq, tk});
  if (key_padding_mask.defined()) {
    mask = mask.masked_fill(key_padding_mask.to(torch::kBool).view({batch, 1, 1, tk}), neg_inf);
  }
  // An empty row is given every key (so the kernel stays finite) and its output is zeroed after.
  const auto visible = (mask != neg_inf).any(/*dim=*/-1, /*keepdim=*/true);
  mask = mask.masked_fill(visible.logical_not(), 0.0);
  const auto attended = compat::sdpa(split(q, tq), split(k, tk), split(v, tk), mask, dropout_p);
  return (attended * visible.to(attended.dtype())).transpose(1, 2).reshape({batch, tq, d});
}

}  // namespace mmkd::nn
