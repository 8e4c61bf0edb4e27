// Multi-head attention through LibTorch's fused scaled_dot_product_attention (2.x): the CUDA path
// when no map or logit is tapped, with mmkd's rule for query rows that see no key.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace mmkd::nn {

/// The same contract as fused_attention(): q [B,Tq,d], k/v [B,Tk,d] with heads interleaved,
/// attn_mask additive float [Tq,Tk] or undefined, key_padding_mask bool [B,Tk] (true = padded) or
/// undefined; returns [B,Tq,d]. A query row with no visible key gives zeros (LibTorch's kernels
/// would give NaN), with zero gradient. Dropout uses LibTorch's generator of the tensors' device.
/// Throws on LibTorch 1.x (compat::has_sdpa()).
torch::Tensor sdpa_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             int64_t heads, const torch::Tensor& attn_mask = {},
                             const torch::Tensor& key_padding_mask = {}, double dropout_p = 0.0);

}  // namespace mmkd::nn
