#include "mmkd/nn/multihead_attention.h"

#include <cmath>
#include <limits>

#include "mmkd/core/error.h"
#include "mmkd/core/torch_compat.h"
#include "mmkd/nn/dropout.h"
#include "mmkd/nn/fused_attention.h"
#include "mmkd/nn/sdpa_attention.h"

namespace mmkd::nn {

torch::Tensor masked_softmax(const torch::Tensor& logits, double temperature) {
  MMKD_CHECK(temperature > 0, "masked_softmax: temperature must be > 0, got ", temperature);
  const auto scaled = temperature == 1.0 ? logits : logits / temperature;
  // A row is visible when at least one entry is above -inf (its max is); others would give
  // 0/0 = NaN. One reduction pass, rather than a full-size comparison and then an any().
  const auto hidden =
      scaled.amax(/*dim=*/-1, /*keepdim=*/true) == -std::numeric_limits<float>::infinity();
  // Padding rarely hides every key of a row: then the fills change nothing and are skipped (two
  // full-size passes each way; the values and gradients are the same). On the CPU only, where
  // asking is free; a CUDA step may be captured into a graph, which cannot wait for the answer.
  if (scaled.device().is_cpu() && !hidden.any().item<bool>()) return torch::softmax(scaled, -1);
  const auto safe = scaled.masked_fill(hidden, 0.0);
  return torch::softmax(safe, -1).masked_fill(hidden, 0.0);
}

MultiheadAttentionImpl::MultiheadAttentionImpl(const MultiheadAttentionOptions& options_)
    : options(options_) {
  const int64_t d = options.embed_dim();
  MMKD_CHECK(d > 0 && options.num_heads() > 0, "multi-head attention: embed_dim (", d,
             ") and num_heads (", options.num_heads(), ") must be positive");
  MMKD_CHECK(d % options.num_heads() == 0, "multi-head attention: embed_dim ", d,
             " is not divisible by num_heads ", options.num_heads());
  MMKD_CHECK(options.attn_dropout() >= 0 && options.attn_dropout() < 1,
             "multi-head attention: attn_dropout must be in [0,1), got ", options.attn_dropout());
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * d, d}));
  in_proj_bias = register_parameter("in_proj_bias", torch::empty({3 * d}));
  out_proj = register_module("out_proj", torch::nn::Linear(d, d));
  reset_parameters();
}

void MultiheadAttentionImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  // fairseq/MulT: Xavier over the packed [3d,d] matrix (fans 3d and d), zero biases.
  torch::nn::init::xavier_uniform_(in_proj_weight);
  torch::nn::init::xavier_uniform_(out_proj->weight);
  in_proj_bias.zero_();
  out_proj->bias.zero_();
}

AttentionOutput MultiheadAttentionImpl::forward(
    const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value,
    const torch::Tensor& attn_mask, const torch::Tensor& key_padding_mask, const TapRequest& taps) {
  const int64_t d = options.embed_dim();
  const int64_t heads = options.num_heads();
  const int64_t head_dim = d / heads;
  MMKD_CHECK(query.dim() == 3 && key.dim() == 3 && value.dim() == 3,
             "multi-head attention: expected query/key/value of shape [B,T,d], got ", query.sizes(),
             ", ", key.sizes(), ", ", value.sizes());
  MMKD_CHECK(query.size(2) == d && key.size(2) == d && value.size(2) == d,
             "multi-head attention: feature size must be embed_dim ", d, ", got ", query.sizes(),
             ", ", key.sizes(), ", ", value.sizes());
  MMKD_CHECK(key.sizes() == value.sizes(), "multi-head attention: key ", key.sizes(), " and value ",
             value.sizes(), " differ in shape");
  MMKD_CHECK(query.size(0) == key.size(0), "multi-head attention: batch of query (", query.size(0),
             ") and key (", key.size(0), ") differ");
  const int64_t batch = query.size(0);
  const int64_t tq = query.size(1);
  const int64_t tk = key.size(1);

  namespace F = torch::nn::functional;
  torch::Tensor q, k, v;
  if (query.is_same(key) && key.is_same(value)) {
    auto qkv = F::linear(query, in_proj_weight, in_proj_bias).chunk(3, -1);
    q = qkv[0], k = qkv[1], v = qkv[2];
  } else if (key.is_same(value)) {
    q = F::linear(query, in_proj_weight.slice(0, 0, d), in_proj_bias.slice(0, 0, d));
    auto kv = F::linear(key, in_proj_weight.slice(0, d), in_proj_bias.slice(0, d)).chunk(2, -1);
    k = kv[0], v = kv[1];
  } else {
    q = F::linear(query, in_proj_weight.slice(0, 0, d), in_proj_bias.slice(0, 0, d));
    k = F::linear(key, in_proj_weight.slice(0, d, 2 * d), in_proj_bias.slice(0, d, 2 * d));
    v = F::linear(value, in_proj_weight.slice(0, 2 * d), in_proj_bias.slice(0, 2 * d));
  }
  if (attn_mask.defined()) {
    MMKD_CHECK(attn_mask.dim() == 2 && attn_mask.size(0) == tq && attn_mask.size(1) == tk,
               "multi-head attention: attn_mask must be [Tq,Tk] = [", tq, ",", tk, "], got ",
               attn_mask.sizes());
  }
  if (key_padding_mask.defined()) {
    MMKD_CHECK(key_padding_mask.dim() == 2 && key_padding_mask.size(0) == batch &&
                   key_padding_mask.size(1) == tk,
               "multi-head attention: key_padding_mask must be [B,Tk] = [", batch, ",", tk,
               "], got ", key_padding_mask.sizes());
  }
  // [B,T,d] -> [B,H,T,d_k]
  const auto split_heads = [&](const torch::Tensor& x, int64_t t) {
    return x.view({batch, t, heads, head_dim}).transpose(1, 2);
  };
  // Masked, scaled logits [B,H,Tq,Tk]: needed by the reference path and by logit/map taps.
  const auto scaled_logits = [&] {
    auto logits = torch::matmul(split_heads(q, tq), split_heads(k, tk).transpose(-2, -1)) *
                  (1.0 / std::sqrt(double(head_dim)));
    if (attn_mask.defined()) logits = logits + attn_mask.to(logits.dtype());
    // A batch without padding (fixed-length data) skips the fill: it would change nothing. CPU
    // only, as in masked_softmax.
    if (key_padding_mask.defined() &&
        (!logits.device().is_cpu() || key_padding_mask.any().item<bool>())) {
      logits = logits.masked_fill(key_padding_mask.to(torch::kBool).view({batch, 1, 1, tk}),
                                  -std::numeric_limits<float>::infinity());
    }
    return logits;
  };
  const bool masked = attn_mask.defined() || key_padding_mask.defined();
  // Fused path (fused_attention.h): no [B,H,Tq,Tk] tensor is needed for the output. Taps, when
  // asked, are computed beside it from the same projections, so the output — and the dropout
  // masks it draws — are the same with and without taps: a distillation run with beta = 0
  // trains exactly like the student alone.
  if (attention_kernel() == AttentionKernel::kFused && head_dim <= 64 &&
      fused_attention_supported(q, k, v, attn_mask)) {
    const double p = is_training() ? options.attn_dropout() : 0.0;
    const uint64_t seed = p > 0 ? draw_dropout_seed() : 0;
    AttentionOutput result;
    result.output = out_proj(fused_attention(q, k, v, heads, attn_mask, key_padding_mask, p, seed));
    if (taps.logits || taps.map) {
      const auto logits = scaled_logits();
      if (taps.logits) result.logits = logits;
      if (taps.map)
        result.map = (masked ? masked_softmax(logits) : torch::softmax(logits, -1)).mean(1);
    }
    if (taps.post_attention) result.post_attention = result.output;
    return result;
  }
  // LibTorch's fused kernel (flash / memory-efficient) on CUDA, or everywhere when asked for.
  // Taps need the [B,H,Tq,Tk] logits, so a tapped layer takes the reference path below.
  const bool tapped = taps.logits || taps.map;
  const bool sdpa_here = attention_kernel() == AttentionKernel::kSdpa ||
                         (attention_kernel() == AttentionKernel::kFused && q.is_cuda());
  if (!tapped && sdpa_here && compat::has_sdpa()) {
    const double p = is_training() ? options.attn_dropout() : 0.0;
    AttentionOutput result;
    result.output = out_proj(sdpa_attention(q, k, v, heads, attn_mask, key_padding_mask, p));
    if (taps.post_attention) result.post_attention = result.output;
    return result;
  }
  const auto logits = scaled_logits();
  // Without a mask no row can be empty, so the plain softmax is exact and cheaper.
  const auto weights = masked ? masked_softmax(logits) : torch::softmax(logits, -1);
  const auto dropped = F::dropout(
      weights, F::DropoutFuncOptions().p(options.attn_dropout()).training(is_training()));
  auto attended =
      torch::matmul(dropped, split_heads(v, tk)).transpose(1, 2).reshape({batch, tq, d});

  AttentionOutput result;
  result.output = out_proj(attended);
  if (taps.logits) result.logits = logits;
  if (taps.map) result.map = weights.mean(1);
  if (taps.post_attention) result.post_attention = result.output;
  return result;
}

}  // namespace mmkd::nn
