#include "mmkd/onnx/layer_graphs.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "mmkd/core/error.h"
#include "mmkd/nn/position_frequencies.h"

namespace mmkd::onnx {

namespace {

constexpr int64_t kOnnxFloat = 1;  // TensorProto.FLOAT, for Cast
const std::vector<int64_t> kSwapLastTwo = {0, 2, 1};
// The logit bias of a blocked pair: far below any logit, so its softmax weight is exactly 0, yet
// finite, so that a row of blocked pairs stays finite (uniform) until it is zeroed. Exact while
// |logits| < 1e22, where adding it to a logit still rounds to kHidden.
constexpr float kHidden = -1e30f;

}  // namespace

std::string LayerGraphs::weight(const std::string& name, const torch::Tensor& parameter,
                                const std::string& view, const torch::Tensor& value) {
  auto [it, inserted] = stored_.emplace(std::make_pair(parameter.unsafeGetTensorImpl(), view), "");
  if (inserted) {
    it->second = g.initializer(name, (value.defined() ? value : parameter).to(torch::kFloat32));
  }
  return it->second;
}

bool LayerGraphs::exported(const torch::Tensor& parameter) const {
  const auto it = stored_.lower_bound({parameter.unsafeGetTensorImpl(), ""});
  return it != stored_.end() && it->first.first == parameter.unsafeGetTensorImpl();
}

std::string LayerGraphs::as_float(const std::string& x) {
  return g.node("Cast", {x}, {{"to", kOnnxFloat}});
}

std::string LayerGraphs::kept(const std::string& mask) { return as_float(g.node("Not", {mask})); }

std::string LayerGraphs::size(const std::string& x, int64_t axis) {
  return g.node("Gather", {g.node("Shape", {x}), g.scalar_i64(axis)}, {{"axis", int64_t(0)}},
                "size");
}

std::string LayerGraphs::zero_padding_mask(const std::string& x) {
  // Counting the nonzero features is exact where a sum of magnitudes could round.
  const auto count = g.node("ReduceSum", {kept(g.node("Equal", {x, g.scalar(0.0f)})), g.ints({-1})},
                            {{"keepdims", int64_t(0)}});
  return g.node("Equal", {count, g.scalar(0.0f)}, {}, "padding");
}

std::string LayerGraphs::conv1d(const std::string& name, const torch::Tensor& w,
                                const models::ConvGeometry& geometry, const std::string& x) {
  const auto channels_first = g.node("Transpose", {x}, {{"perm", kSwapLastTwo}});
  const auto y = g.node("Conv", {channels_first, weight(name + ".weight", w)},
                        {{"kernel_shape", std::vector<int64_t>{geometry.kernel}},
                         {"strides", std::vector<int64_t>{geometry.stride}},
                         {"pads", std::vector<int64_t>{geometry.padding, geometry.padding}}});
  return g.node("Transpose", {y}, {{"perm", kSwapLastTwo}}, name);
}

std::string LayerGraphs::linear(const std::string& name, const torch::nn::LinearImpl& layer,
                                const std::string& x) {
  const auto y =
      g.node("MatMul", {x, weight(name + ".weight", layer.weight, "t", layer.weight.t())});
  if (!layer.bias.defined()) return y;
  return g.node("Add", {y, weight(name + ".bias", layer.bias)}, {}, name);
}

std::string LayerGraphs::layer_norm(const std::string& name, const torch::nn::LayerNormImpl& layer,
                                    const std::string& x) {
  return g.node("LayerNormalization",
                {x, weight(name + ".weight", layer.weight), weight(name + ".bias", layer.bias)},
                {{"axis", int64_t(-1)}, {"epsilon", float(layer.options.eps())}}, name);
}

std::string LayerGraphs::embed(const std::string& seq, int64_t d, bool zero_position_padding) {
  // Positions 1..T for the T of this call, from the same float32 frequencies as the encoder.
  const auto steps = size(seq, 1);
  const auto one = g.scalar_i64(1);
  const auto index = g.node("Range", {one, g.node("Add", {steps, one}), one});
  const auto position = g.node("Unsqueeze", {as_float(index), g.ints({1})});  // [T,1]
  auto& frequencies = frequencies_[d];
  if (frequencies.empty()) {
    frequencies = g.initializer("position_frequencies",
                                nn::sinusoidal_frequencies(d).unsqueeze(0));  // [1,d/2]
  }
  const auto angles = g.node("Mul", {position, frequencies});
  std::vector<std::string> halves = {g.node("Sin", {angles}), g.node("Cos", {angles})};
  if (d % 2 == 1) halves.push_back(g.node("Mul", {position, g.scalar(0.0f)}));
  auto positions = g.node("Concat", halves, {{"axis", int64_t(1)}}, "positions");
  if (zero_position_padding) {
    // MulT: a step whose first feature is exactly 0 gets the zero positional vector.
    const auto first = g.node("Gather", {seq, g.scalar_i64(0)}, {{"axis", int64_t(2)}});
    const auto keep = kept(g.node("Equal", {first, g.scalar(0.0f)}));
    positions = g.node("Mul", {positions, g.node("Unsqueeze", {keep, g.ints({2})})});
  }
  const auto scaled = g.node("Mul", {seq, g.scalar(float(std::sqrt(double(d))))});
  return g.node("Add", {scaled, positions}, {}, "embedded");
}

LayerGraphs::AttentionMask LayerGraphs::attention_mask(const std::string& tq, const std::string& tk,
                                                       bool future, const std::string& key_padding,
                                                       bool last_row) {
  std::string blocked;
  if (future) {
    // MulT's future mask: key j is hidden from query i when j - i > |Tk - Tq|.
    const auto zero = g.scalar_i64(0), one = g.scalar_i64(1);
    const auto first_row = last_row ? g.node("Sub", {tq, one}) : zero;
    const auto rows = g.node("Unsqueeze", {g.node("Range", {first_row, tq, one}), g.ints({1})});
    const auto cols = g.node("Unsqueeze", {g.node("Range", {zero, tk, one}), g.ints({0})});
    const auto offset = g.node("Abs", {g.node("Sub", {tk, tq})});
    blocked = g.node("Greater", {g.node("Sub", {cols, rows}), offset}, {}, "future");
  }
  if (!key_padding.empty()) {
    const auto keys = g.node("Unsqueeze", {key_padding, g.ints({1, 2})});  // [B,1,1,Tk]
    blocked = blocked.empty() ? keys : g.node("Or", {blocked, keys});
  }
  AttentionMask mask;
  if (blocked.empty()) return mask;
  mask.bias = g.node("Where", {blocked, g.scalar(kHidden), g.scalar(0.0f)}, {}, "mask_bias");
  if (!key_padding.empty()) {
    // With key padding a query row can see no key at all (front padding under the future
    // mask, or a fully padded sample); masked_softmax gives such a row zeros.
    const auto seen =
        g.node("ReduceSum", {kept(blocked), g.ints({-1})}, {{"keepdims", int64_t(1)}});
    mask.visible_rows = g.node("Cast", {g.node("Greater", {seen, g.scalar(0.0f)})},
                               {{"to", kOnnxFloat}}, "visible_rows");
  }
  return mask;
}

std::string LayerGraphs::attention(const std::string& name, const nn::MultiheadAttentionImpl& mha,
                                   const std::string& query, const std::string& key,
                                   const AttentionMask& mask) {
  const int64_t d = mha.options.embed_dim();
  const int64_t heads = mha.options.num_heads();
  const int64_t head_dim = d / heads;
  // The packed in_proj rows are Q, K, V in that order; each becomes its own [d,d] MatMul.
  const auto project = [&](int64_t part, const char* label, const std::string& x,
                           const std::vector<int64_t>& perm) {
    const auto w = weight(name + ".w" + label, mha.in_proj_weight, label,
                          mha.in_proj_weight.slice(0, part * d, (part + 1) * d).t());
    const auto b = weight(name + ".b" + label, mha.in_proj_bias, label,
                          mha.in_proj_bias.slice(0, part * d, (part + 1) * d));
    const auto y = g.node("Add", {g.node("MatMul", {x, w}), b});
    const auto split = g.node("Reshape", {y, g.ints({0, 0, heads, head_dim})});
    return g.node("Transpose", {split}, {{"perm", perm}}, std::string(label));
  };
  const auto q = project(0, "q", query, {0, 2, 1, 3});  // [B,H,Tq,dk]
  const auto k = project(1, "k", key, {0, 2, 3, 1});    // [B,H,dk,Tk]
  const auto v = project(2, "v", key, {0, 2, 1, 3});    // [B,H,Tk,dk]
  const auto logits =
      g.node("Mul", {g.node("MatMul", {q, k}), g.scalar(float(1.0 / std::sqrt(double(head_dim))))},
             {}, "scores");
  // The bias makes a blocked pair's weight exactly 0 (exp(kHidden - max) underflows) without the
  // NaN that -inf gives a row with no visible key; such rows are then zeroed, as masked_softmax.
  const auto biased = mask.bias.empty() ? logits : g.node("Add", {logits, mask.bias});
  auto weights = g.node("Softmax", {biased}, {{"axis", int64_t(-1)}});
  if (!mask.visible_rows.empty()) weights = g.node("Mul", {weights, mask.visible_rows});
  const auto attended = g.node("Transpose", {g.node("MatMul", {weights, v})},
                               {{"perm", std::vector<int64_t>{0, 2, 1, 3}}});
  const auto merged = g.node("Reshape", {attended, g.ints({0, 0, d})});
  return linear(name + ".out_proj", *mha.out_proj, merged);
}

std::string LayerGraphs::encoder_layer(const std::string& name,
                                       nn::TransformerEncoderLayerImpl& layer, const std::string& x,
                                       const std::string& kv, const AttentionMask& mask) {
  const auto q = layer_norm(name + ".layer_norm0", *layer.layer_norm0, x);
  const auto k = kv.empty() ? q : layer_norm(name + ".layer_norm0", *layer.layer_norm0, kv);
  const auto h = g.node("Add", {x, attention(name + ".self_attn", *layer.self_attn, q, k, mask)});
  const auto hidden =
      g.node("Relu", {linear(name + ".fc1", *layer.fc1,
                             layer_norm(name + ".layer_norm1", *layer.layer_norm1, h))});
  return g.node("Add", {h, linear(name + ".fc2", *layer.fc2, hidden)}, {}, name);
}

std::string LayerGraphs::encoder(const std::string& name, const nn::TransformerEncoderImpl& enc,
                                 const std::string& x, const std::string& kv,
                                 const std::string& key_padding, bool last_row_only) {
  const auto& options = enc.options;
  const bool cross = !kv.empty();
  std::string padding = key_padding;
  if (padding.empty() && options.mask_padding()) padding = zero_padding_mask(cross ? kv : x);
  const int64_t d = options.embed_dim();
  auto h = embed(x, d, options.zero_position_padding());
  const auto source = cross ? embed(kv, d, options.zero_position_padding()) : std::string();
  const auto tq = size(x, 1);
  const auto tk = cross ? size(kv, 1) : tq;

  // As TransformerEncoderImpl::forward: from first_row_layer on only the last query row is
  // computed (every layer in cross form, the last one in self form).
  const size_t layers = enc.layers->size();
  const size_t first_row_layer = !last_row_only ? layers : cross ? 0 : layers - 1;
  auto mask = attention_mask(tq, tk, options.future_mask(), padding, false);
  for (size_t i = 0; i < layers; ++i) {
    auto keys = source;
    if (i == first_row_layer) {
      if (!cross) keys = h;
      const auto int64_max = std::numeric_limits<int64_t>::max();
      h = g.node("Slice", {h, g.ints({-1}), g.ints({int64_max}), g.ints({1})}, {}, "last_row");
      mask = attention_mask(tq, tk, options.future_mask(), padding, true);
    }
    auto& layer = *enc.layers->ptr(i)->as<nn::TransformerEncoderLayerImpl>();
    h = encoder_layer(name + ".layers." + std::to_string(i), layer, h, keys, mask);
  }
  return layer_norm(name + ".layer_norm", *enc.layer_norm, h);
}

}  // namespace mmkd::onnx
