// MulT's transformer encoder (pre-norm layers, sinusoidal positions, optional future mask) in
// self-attention and cross-modal form, with per-layer taps for distillation.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "mmkd/nn/multihead_attention.h"

namespace mmkd::nn {

struct TransformerEncoderOptions {
  TransformerEncoderOptions(int64_t embed_dim, int64_t num_heads, int64_t layers)
      : embed_dim_(embed_dim), num_heads_(num_heads), layers_(layers) {}
  TORCH_ARG(int64_t, embed_dim);
  TORCH_ARG(int64_t, num_heads);
  TORCH_ARG(int64_t, layers);
  TORCH_ARG(double, attn_dropout) = 0.1;    ///< on attention weights
  TORCH_ARG(double, relu_dropout) = 0.1;    ///< after ReLU(W1 .)
  TORCH_ARG(double, res_dropout) = 0.1;     ///< on each residual branch
  TORCH_ARG(double, embed_dropout) = 0.25;  ///< on the scaled + positioned input
  /// MulT's additive mask triu(-inf, 1+|Tk-Tq|) of shape [Tq,Tk] (causal for self-attention).
  TORCH_ARG(bool, future_mask) = true;
  /// When the caller passes no padding mask, derive one from the raw input: a time step whose
  /// feature vector is all zero is padding and is excluded as a key.
  TORCH_ARG(bool, mask_padding) = true;
  /// MulT's positional rule: a step whose first input feature is exactly 0 gets the zero
  /// positional vector (fairseq's padding index), the others keep their positions 1..T.
  TORCH_ARG(bool, zero_position_padding) = false;
};

/// What one layer exposed; each tensor is undefined unless requested.
struct LayerTaps {
  torch::Tensor logits;          ///< [B,H,Tq,Tk], masked entries -inf
  torch::Tensor map;             ///< [B,Tq,Tk]
  torch::Tensor post_attention;  ///< [B,Tq,d]
  torch::Tensor output;          ///< [B,Tq,d], the layer's output
};

/// Per-layer taps of one encoder, layer 0 first.
using EncoderTaps = std::vector<LayerTaps>;

struct EncoderOutput {
  torch::Tensor output;  ///< [B,Tq,d], after the final LayerNorm
  EncoderTaps taps;      ///< one entry per layer when any tap was requested, else empty
};

/// Sinusoidal positional embedding of fairseq/MulT for positions 1..length: [length, dim], the
/// sin half then the cos half (a zero column appended when dim is odd).
torch::Tensor sinusoidal_positions(int64_t length, int64_t dim,
                                   const torch::TensorOptions& options = {});

/// MulT's future mask: additive [Tq,Tk], -inf where column j > i + |Tk-Tq|, else 0.
torch::Tensor future_mask(int64_t tq, int64_t tk, const torch::TensorOptions& options = {});

/// Padding mask of a feature sequence [B,T,F]: true where the whole feature vector is zero.
torch::Tensor zero_padding_mask(const torch::Tensor& x);

/// One pre-norm MulT layer:
///   x = x + Drop_res(MHA(LN0(x), LN0(kv), LN0(kv)))
///   x = x + Drop_res(W2 Drop_relu(ReLU(W1 LN1(x))))
/// 12d^2 + 13d parameters.
class TransformerEncoderLayerImpl : public torch::nn::Module {
 public:
  explicit TransformerEncoderLayerImpl(const TransformerEncoderOptions& options);

  /// kv undefined = self-attention (keys/values are LN0(x)). Returns the layer output and fills
  /// `taps` with what `request` asks for.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& kv,
                        const torch::Tensor& attn_mask, const torch::Tensor& key_padding_mask,
                        const TapRequest& request, LayerTaps* taps);

  TransformerEncoderOptions options;
  MultiheadAttention self_attn{nullptr};
  torch::nn::Linear fc1{nullptr};  ///< d -> 4d
  torch::nn::Linear fc2{nullptr};  ///< 4d -> d
  torch::nn::LayerNorm layer_norm0{nullptr};
  torch::nn::LayerNorm layer_norm1{nullptr};
};
TORCH_MODULE(TransformerEncoderLayer);

/// MulT's TransformerEncoder: x*sqrt(d) + positions, embedding dropout, `layers` pre-norm layers,
/// final LayerNorm. In cross-modal form the keys/values are the embedded source sequence at every
/// layer (they are not updated across layers). layers*(12d^2+13d) + 2d parameters.
class TransformerEncoderImpl : public torch::nn::Module {
 public:
  explicit TransformerEncoderImpl(const TransformerEncoderOptions& options);

  /// x [B,Tq,d] supplies the queries; kv [B,Tk,d] the keys/values (undefined = self-attention).
  /// x_padding / kv_padding: bool [B,T], true = padded; undefined = derive from the input when
  /// options.mask_padding, else none. In self-attention x_padding masks the keys; in cross-modal
  /// form kv_padding does (x_padding is then unused: padded query rows are still computed).
  ///
  /// last_row_only: the caller reads only the final time step (MulT's last readout); output is
  /// then [B,1,d]. In self-attention form the last layer computes that one query row against all
  /// keys, and every earlier layer is computed in full because that row's keys need it. In
  /// cross-modal form every layer computes that row alone (its keys are the source, not the rows
  /// below). Not combinable with taps.
  EncoderOutput forward(const torch::Tensor& x, const torch::Tensor& kv = {},
                        const torch::Tensor& x_padding = {}, const torch::Tensor& kv_padding = {},
                        const TapRequest& request = {}, bool last_row_only = false);

  TransformerEncoderOptions options;
  torch::nn::ModuleList layers{nullptr};
  torch::nn::LayerNorm layer_norm{nullptr};

 private:
  std::vector<TransformerEncoderLayer> layer_modules_;
};
TORCH_MODULE(TransformerEncoder);

}  // namespace mmkd::nn
