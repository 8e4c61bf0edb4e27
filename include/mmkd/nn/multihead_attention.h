// MulT's multi-head attention, written out so that its logits, head-averaged map and
// post-attention output can be captured for distillation (and cost nothing when not asked for).
#pragma once

#include <torch/torch.h>

namespace mmkd::nn {

/// What a forward pass captures besides its output. All off by default: a plain forward
/// computes no extra tensor.
struct TapRequest {
  bool logits = false;  ///< scaled logits QK^T/sqrt(d_k) per head, masks applied [B,H,Tq,Tk]
  bool map = false;     ///< head-averaged attention map [B,Tq,Tk] (rows sum to 1 or are 0)
  bool post_attention = false;  ///< attention output after the out projection [B,Tq,d]
  bool layer_output = false;    ///< output of each encoder layer [B,Tq,d] (encoders only)

  bool any() const { return logits || map || post_attention || layer_output; }
  /// Every tap on.
  static TapRequest all() { return {true, true, true, true}; }
};

/// Result of one attention call; the captured tensors are undefined unless requested.
struct AttentionOutput {
  torch::Tensor output;          ///< [B,Tq,d]
  torch::Tensor logits;          ///< [B,H,Tq,Tk]; masked entries are -inf
  torch::Tensor map;             ///< [B,Tq,Tk]; computed before attention dropout
  torch::Tensor post_attention;  ///< [B,Tq,d]; the same tensor as `output`
};

struct MultiheadAttentionOptions {
  MultiheadAttentionOptions(int64_t embed_dim, int64_t num_heads)
      : embed_dim_(embed_dim), num_heads_(num_heads) {}
  /// Model width d; must be divisible by num_heads.
  TORCH_ARG(int64_t, embed_dim);
  TORCH_ARG(int64_t, num_heads);
  /// Dropout on the attention weights (MulT: 0.1); the captured map is taken before it.
  TORCH_ARG(double, attn_dropout) = 0.1;
};

/// Softmax over the last dimension of `logits / temperature` in which a row whose entries are
/// all -inf (no visible key) yields zeros instead of NaN. Use it to recompute maps from captured
/// logits (e.g. EDAM's temperature softmax).
torch::Tensor masked_softmax(const torch::Tensor& logits, double temperature = 1.0);

/// Multi-head attention with MulT's parameters: a packed input projection `in_proj_weight`
/// [3d,d] + `in_proj_bias` [3d] (Q, K, V rows in that order) and `out_proj` Linear(d,d); Xavier
/// uniform weights and zero biases as MulT/fairseq. 4d^2 + 4d parameters.
class MultiheadAttentionImpl : public torch::nn::Module {
 public:
  explicit MultiheadAttentionImpl(const MultiheadAttentionOptions& options);

  /// query [B,Tq,d], key/value [B,Tk,d]; attn_mask: additive float [Tq,Tk] (or undefined);
  /// key_padding_mask: bool [B,Tk], true = padded key (or undefined). A query row that sees no
  /// key gets an all-zero attention row, so its output is out_proj(0) = the out bias; never NaN.
  AttentionOutput forward(const torch::Tensor& query, const torch::Tensor& key,
                          const torch::Tensor& value, const torch::Tensor& attn_mask = {},
                          const torch::Tensor& key_padding_mask = {}, const TapRequest& taps = {});

  void reset_parameters();

  MultiheadAttentionOptions options;
  torch::Tensor in_proj_weight;
  torch::Tensor in_proj_bias;
  torch::nn::Linear out_proj{nullptr};
};
TORCH_MODULE(MultiheadAttention);

}  // namespace mmkd::nn
