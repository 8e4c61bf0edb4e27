// A fused CPU attention kernel for the small-head case (d_k = d/heads of 5..8): logits, masks,
// softmax, dropout and the weighted sum in one pass per query row, with a flash-style backward
// that recomputes the logits instead of storing [B,H,Tq,Tk] maps.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace mmkd::nn {

/// Which attention implementation MultiheadAttention uses when no map/logit tap is requested.
enum class AttentionKernel {
  kFused,      ///< default: fused_attention() on CPU float32, sdpa_attention() on CUDA (2.x),
               ///< the reference path elsewhere
  kReference,  ///< always the materialising LibTorch path (matmul, softmax, dropout, matmul)
  kSdpa,       ///< sdpa_attention() on every device (LibTorch 2.x; reference path on 1.13)
};

/// Process-wide choice (for benchmarks and tests); kFused by default, or what the environment
/// variable MMKD_ATTENTION (reference | sdpa) says at start-up.
void set_attention_kernel(AttentionKernel kernel);
AttentionKernel attention_kernel();
/// "fused", "reference" or "sdpa".
const char* attention_kernel_name(AttentionKernel kernel);

/// True when fused_attention() can run on these tensors (CPU, float32, last dim contiguous,
/// masks not requiring grad).
bool fused_attention_supported(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& attn_mask);

/// Multi-head attention without projections. q [B,Tq,d], k/v [B,Tk,d] (heads interleaved as
/// [.., h*d_k + c], i.e. the layout of the in-projection's output; any strides with a contiguous
/// last dimension), attn_mask additive float [Tq,Tk] or undefined, key_padding_mask bool [B,Tk]
/// (true = padded) or undefined. Returns softmax(q k^T/sqrt(d_k) + masks) v per head,
/// concatenated over heads: [B,Tq,d] contiguous. A query row with no visible key gives zeros
/// (as masked_softmax). With dropout_p > 0 the weights are dropped with the counter-based mask
/// of attention_dropout_keep(seed, ...), scaled by 1/(1-p); differentiable in q, k and v.
torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, int64_t heads,
                              const torch::Tensor& attn_mask = {},
                              const torch::Tensor& key_padding_mask = {}, double dropout_p = 0.0,
                              uint64_t seed = 0);

/// The dropout mask fused_attention() applies for `seed`: bool [B,H,Tq,Tk], true = kept. For
/// tests (the kernel never materialises it).
torch::Tensor attention_dropout_keep(uint64_t seed, int64_t batch, int64_t heads, int64_t tq,
                                     int64_t tk, double dropout_p);

}  // namespace mmkd::nn
