#include "mmkd/nn/transformer_encoder.h"

#include <cmath>
#include <cstdlib>
#include <limits>

#include "mmkd/core/error.h"
#include "mmkd/nn/dropout.h"
#include "mmkd/nn/position_frequencies.h"

namespace mmkd::nn {

namespace {

void check_dropout(double p, const char* name) {
  MMKD_CHECK(p >= 0 && p < 1, "transformer encoder: ", name, " must be in [0,1), got ", p);
}

// fairseq's Linear(): Xavier-uniform weight, zero bias.
torch::nn::Linear xavier_linear(int64_t in, int64_t out) {
  torch::nn::Linear linear(in, out);
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(linear->weight);
  linear->bias.zero_();
  return linear;
}

}  // namespace

torch::Tensor sinusoidal_positions(int64_t length, int64_t dim,
                                   const torch::TensorOptions& options) {
  MMKD_CHECK(length >= 0 && dim > 0, "sinusoidal_positions: bad length ", length, " or dim ", dim);
  const auto float_options = options.dtype(torch::kFloat32);
  const auto freq = sinusoidal_frequencies(dim, float_options);
  const auto pos = torch::arange(1, length + 1, float_options).unsqueeze(1);
  const auto angles = pos * freq.unsqueeze(0);
  auto table = torch::cat({torch::sin(angles), torch::cos(angles)}, 1);
  if (dim % 2 == 1) table = torch::cat({table, torch::zeros({length, 1}, float_options)}, 1);
  return options.has_dtype() ? table.to(options.dtype()) : table;
}

torch::Tensor future_mask(int64_t tq, int64_t tk, const torch::TensorOptions& options) {
  const auto float_options = options.has_dtype() ? options : options.dtype(torch::kFloat32);
  return torch::full({tq, tk}, -std::numeric_limits<float>::infinity(), float_options)
      .triu(1 + std::abs(tk - tq));
}

torch::Tensor zero_padding_mask(const torch::Tensor& x) {
  MMKD_CHECK(x.dim() == 3, "zero_padding_mask: expected [B,T,F], got ", x.sizes());
  return (x == 0).all(-1);
}

TransformerEncoderLayerImpl::TransformerEncoderLayerImpl(const TransformerEncoderOptions& options_)
    : options(options_) {
  const int64_t d = options.embed_dim();
  self_attn = register_module(
      "self_attn",
      MultiheadAttention(
          MultiheadAttentionOptions(d, options.num_heads()).attn_dropout(options.attn_dropout())));
  fc1 = register_module("fc1", xavier_linear(d, 4 * d));
  fc2 = register_module("fc2", xavier_linear(4 * d, d));
  layer_norm0 = register_module("layer_norm0", torch::nn::LayerNorm(std::vector<int64_t>{d}));
  layer_norm1 = register_module("layer_norm1", torch::nn::LayerNorm(std::vector<int64_t>{d}));
}

torch::Tensor TransformerEncoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& kv,
                                                   const torch::Tensor& attn_mask,
                                                   const torch::Tensor& key_padding_mask,
                                                   const TapRequest& request, LayerTaps* taps) {
  const bool training = is_training();
  auto q = layer_norm0(x);
  // The same LN0 normalises queries and keys/values (MulT's maybe_layer_norm(0, .)).
  const auto k = kv.defined() ? layer_norm0(kv) : q;
  auto attention = self_attn(q, k, k, attn_mask, key_padding_mask, request);
  auto h = x + nn::apply_dropout(attention.output, options.res_dropout(), training);
  auto f = torch::relu(fc1(layer_norm1(h)));
  f = fc2(nn::apply_dropout(f, options.relu_dropout(), training));
  auto out = h + nn::apply_dropout(f, options.res_dropout(), training);
  if (taps != nullptr) {
    taps->logits = std::move(attention.logits);
    taps->map = std::move(attention.map);
    taps->post_attention = std::move(attention.post_attention);
    if (request.layer_output) taps->output = out;
  }
  return out;
}

TransformerEncoderImpl::TransformerEncoderImpl(const TransformerEncoderOptions& options_)
    : options(options_) {
  MMKD_CHECK(options.embed_dim() > 0, "transformer encoder: embed_dim must be positive, got ",
             options.embed_dim());
  MMKD_CHECK(options.layers() >= 1, "transformer encoder: layers must be >= 1, got ",
             options.layers());
  check_dropout(options.attn_dropout(), "attn_dropout");
  check_dropout(options.relu_dropout(), "relu_dropout");
  check_dropout(options.res_dropout(), "res_dropout");
  check_dropout(options.embed_dropout(), "embed_dropout");
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.layers(); ++i) {
    layer_modules_.emplace_back(options);
    layers->push_back(layer_modules_.back());
  }
  layer_norm = register_module("layer_norm",
                               torch::nn::LayerNorm(std::vector<int64_t>{options.embed_dim()}));
}

EncoderOutput TransformerEncoderImpl::forward(const torch::Tensor& x, const torch::Tensor& kv,
                                              const torch::Tensor& x_padding,
                                              const torch::Tensor& kv_padding,
                                              const TapRequest& request, bool last_row_only) {
  const int64_t d = options.embed_dim();
  MMKD_CHECK(!(last_row_only && request.any()),
             "transformer encoder: last_row_only drops the rows that taps would return");
  MMKD_CHECK(x.dim() == 3 && x.size(2) == d, "transformer encoder: expected input [B,T,", d,
             "], got ", x.sizes());
  const bool cross = kv.defined();
  if (cross) {
    MMKD_CHECK(kv.dim() == 3 && kv.size(2) == d && kv.size(0) == x.size(0),
               "transformer encoder: expected key/value [", x.size(0), ",T,", d, "], got ",
               kv.sizes());
  }
  const bool training = is_training();
  const double scale = std::sqrt(double(d));
  const auto embed = [&](const torch::Tensor& seq) {
    auto positions = sinusoidal_positions(seq.size(1), d, seq.options()).unsqueeze(0);
    if (options.zero_position_padding()) {
      positions = positions * (seq.select(2, 0) != 0).unsqueeze(-1).to(positions.dtype());
    }
    auto e = seq * scale + positions;
    return nn::apply_dropout(e, options.embed_dropout(), training);
  };

  // Keys are masked where padded: the source's padding in cross form, the input's in self form.
  torch::Tensor key_padding = cross ? kv_padding : x_padding;
  if (!key_padding.defined() && options.mask_padding()) {
    key_padding = zero_padding_mask(cross ? kv : x);
  }
  if (key_padding.defined()) {
    const auto& source = cross ? kv : x;
    MMKD_CHECK(key_padding.dim() == 2 && key_padding.size(0) == source.size(0) &&
                   key_padding.size(1) == source.size(1),
               "transformer encoder: padding mask must be [B,Tk] = [", source.size(0), ",",
               source.size(1), "], got ", key_padding.sizes());
    key_padding = key_padding.to(torch::kBool);
  }

  auto h = embed(x);
  const auto source = cross ? embed(kv) : torch::Tensor();
  const int64_t tq = x.size(1);
  const int64_t tk = cross ? kv.size(1) : tq;
  auto mask = options.future_mask() ? future_mask(tq, tk, h.options()) : torch::Tensor();

  EncoderOutput result;
  const bool tapping = request.any();
  if (tapping) result.taps.resize(layer_modules_.size());
  // From which layer on only the read-out row is computed. In cross form the keys are the fixed
  // source at every layer, so a query row depends only on the same row of the layer below: every
  // layer can work on that row alone. In self form the row attends to every row of the layer
  // below, so only the last layer can.
  const size_t layers = layer_modules_.size();
  const size_t first_row_layer = !last_row_only ? layers : cross ? 0 : layers - 1;
  for (size_t i = 0; i < layers; ++i) {
    auto keys = source;
    if (i == first_row_layer) {
      if (!cross) keys = h;  // all rows of the previous layer, passed explicitly as keys
      h = h.narrow(1, tq - 1, 1);
      if (mask.defined()) mask = mask.narrow(0, tq - 1, 1);
    }
    h = layer_modules_[i]->forward(h, keys, mask, key_padding, request,
                                   tapping ? &result.taps[i] : nullptr);
  }
  result.output = layer_norm(h);
  return result;
}

}  // namespace mmkd::nn
