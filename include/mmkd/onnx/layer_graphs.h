// mmkd's layers as ONNX subgraphs, inference mode (dropout is the identity): Conv1d projections,
// Linear, LayerNorm, MulT's multi-head attention with its future and key-padding masks, and the
// whole transformer encoder with sinusoidal positions computed in the graph for any length.
#pragma once

#include <map>
#include <string>
#include <utility>

#include "mmkd/models/conv_geometry.h"
#include "mmkd/nn/transformer_encoder.h"
#include "mmkd/onnx/onnx_graph.h"

namespace mmkd::onnx {

/// Records every parameter a graph stores, so the exporter can refuse a network with a parameter
/// it did not map (a module it does not know would otherwise be dropped silently).
class LayerGraphs {
 public:
  explicit LayerGraphs(OnnxGraph& graph) : g(graph) {}

  /// The initializer holding network parameter `parameter`, stored once under `name`; `view`
  /// names a transformed copy (`value`, e.g. a transpose or a slice) stored beside it.
  std::string weight(const std::string& name, const torch::Tensor& parameter,
                     const std::string& view = "", const torch::Tensor& value = {});
  /// Whether weight() stored `parameter`.
  bool exported(const torch::Tensor& parameter) const;

  /// `x` as float32 (Cast).
  std::string as_float(const std::string& x);
  /// float32 1 where the bool `mask` is false, 0 where it is true (the steps a mask keeps).
  std::string kept(const std::string& mask);
  /// Scalar int64 size of axis `axis` of `x` (Shape + Gather).
  std::string size(const std::string& x, int64_t axis);
  /// bool [B,T]: the steps of x [B,T,F] whose feature vector is all zero.
  std::string zero_padding_mask(const std::string& x);

  /// x [B,T,F] through a bias-free Conv1d over time -> [B,T',C].
  std::string conv1d(const std::string& name, const torch::Tensor& weight,
                     const models::ConvGeometry& geometry, const std::string& x);
  std::string linear(const std::string& name, const torch::nn::LinearImpl& layer,
                     const std::string& x);
  std::string layer_norm(const std::string& name, const torch::nn::LayerNormImpl& layer,
                         const std::string& x);

  /// An encoder's output [B,Tq,d] (or [B,1,d] with last_row_only, as
  /// TransformerEncoderImpl::forward) for queries x and keys/values kv ("" = self-attention);
  /// key_padding: bool [B,Tk] value or "" (none).
  std::string encoder(const std::string& name, const nn::TransformerEncoderImpl& encoder,
                      const std::string& x, const std::string& kv, const std::string& key_padding,
                      bool last_row_only);

  OnnxGraph& g;

 private:
  std::string embed(const std::string& seq, int64_t d, bool zero_position_padding);
  /// The masks of one transformer, computed once for all its layers and heads.
  struct AttentionMask {
    /// Added to the logits: 0 for a visible (query, key) pair, kHidden for a blocked one;
    /// [rows,Tk] or [B,1,rows,Tk]; "" when nothing is blocked.
    std::string bias;
    /// float [B,1,rows,1]: 0 for a query row that sees no key at all, else 1; "" when every row
    /// sees a key (no key padding).
    std::string visible_rows;
  };
  /// rows are all Tq query rows, or the last one.
  AttentionMask attention_mask(const std::string& tq, const std::string& tk, bool future,
                               const std::string& key_padding, bool last_row);
  std::string attention(const std::string& name, const nn::MultiheadAttentionImpl& mha,
                        const std::string& query, const std::string& key,
                        const AttentionMask& mask);
  std::string encoder_layer(const std::string& name, nn::TransformerEncoderLayerImpl& layer,
                            const std::string& x, const std::string& kv, const AttentionMask& mask);

  std::map<std::pair<const void*, std::string>, std::string> stored_;
  std::map<int64_t, std::string> frequencies_;  ///< by width
};

}  // namespace mmkd::onnx
