#include "mmkd/models/multimodal_net.h"

#include <algorithm>

#include "mmkd/core/error.h"
#include "mmkd/models/student.h"
#include "mmkd/models/teacher.h"
#include "mmkd/nn/dropout.h"

namespace mmkd::models {

namespace {

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters(/*recurse=*/true)) total += p.numel();
  return total;
}

}  // namespace

bool TapRequest::wants(const std::string& name) const {
  if (!what.any()) return false;
  return transformers.empty() ||
         std::find(transformers.begin(), transformers.end(), name) != transformers.end();
}

ResidualHeadImpl::ResidualHeadImpl(int64_t in_dim, int64_t out_dim, double out_dropout_)
    : out_dropout(out_dropout_) {
  proj1 = register_module("proj1", torch::nn::Linear(in_dim, in_dim));
  proj2 = register_module("proj2", torch::nn::Linear(in_dim, in_dim));
  out_layer = register_module("out_layer", torch::nn::Linear(in_dim, out_dim));
}

std::pair<torch::Tensor, torch::Tensor> ResidualHeadImpl::forward(const torch::Tensor& h) {
  const auto hidden = mmkd::nn::apply_dropout(torch::relu(proj1(h)), out_dropout, is_training());
  auto penultimate = proj2(hidden) + h;
  return {out_layer(penultimate), penultimate};
}

torch::Tensor readout(const torch::Tensor& x, Readout mode, const torch::Tensor& padding) {
  MMKD_CHECK(x.dim() == 3, "readout: expected [B,T,D], got ", x.sizes());
  if (mode == Readout::kLast) return x.select(1, -1);
  if (!padding.defined()) return x.mean(1);
  MMKD_CHECK(padding.dim() == 2 && padding.size(0) == x.size(0) && padding.size(1) == x.size(1),
             "readout: padding mask must be [B,T] = [", x.size(0), ",", x.size(1), "], got ",
             padding.sizes());
  const auto valid = padding.logical_not().to(x.dtype()).unsqueeze(-1);  // [B,T,1]
  const auto count = valid.sum(1).clamp_min(1.0);                        // [B,1]
  return (x * valid).sum(1) / count;
}

MultimodalNetImpl::MultimodalNetImpl(ModelConfig config, InputShape shape)
    : config_(std::move(config)), geometry_(model_geometry(config_, shape)) {
  stages_ = stages(config_);
}

void MultimodalNetImpl::build_stages() {
  for (const auto& t : geometry_.transformers) {
    auto options = nn::TransformerEncoderOptions(t.width, t.heads, t.layers)
                       .attn_dropout(config_.attn_dropout_for(t.key, t.self_attention()))
                       .relu_dropout(config_.relu_dropout)
                       .res_dropout(config_.res_dropout)
                       .embed_dropout(config_.embed_dropout)
                       .future_mask(config_.future_mask)
                       // Masks are derived by the model from the raw inputs and passed explicitly:
                       // projected sequences are no longer zero on padded steps.
                       .mask_padding(false)
                       .zero_position_padding(config_.mult_compat());
    transformers_.emplace(t.name, register_module(t.module, nn::TransformerEncoder(options)));
  }
  head = register_module(
      "head", ResidualHead(geometry_.readout_dim, geometry_.output_dim, config_.out_dropout));
}

nn::TransformerEncoder MultimodalNetImpl::transformer(const std::string& name) const {
  return transformers_.at(geometry_.transformer(name).name);
}

ModelOutput MultimodalNetImpl::forward(const ModelInputs& inputs, const TapRequest& request) {
  for (const auto& name : request.transformers) transformer(name);  // validates the name
  std::array<torch::Tensor, 3> sequences, padding;
  project(inputs, sequences, padding);

  ModelOutput result;
  std::vector<torch::Tensor> readouts;
  // With the last-step readout only the final row of a transformer that is read out directly
  // matters, so it can compute that row alone (see TransformerEncoder::forward). Done only in
  // inference mode (predict, latency, bench: the deployment path): evaluation, distillation targets
  // and training keep every row, so metrics do not move by BLAS rounding between a 1-row and an
  // n-row product.
  const bool last_readout =
      c10::InferenceMode::is_enabled() && !is_training() && config_.readout == Readout::kLast;
  const auto run = [&](const std::string& name, const torch::Tensor& x, const torch::Tensor& kv,
                       const torch::Tensor& x_pad, const torch::Tensor& kv_pad) {
    const auto taps = request.wants(name) ? request.what : nn::TapRequest{};
    const bool last_row_only = last_readout && geometry_.transformer(name).read_out && !taps.any();
    auto out = transformers_.at(name)->forward(x, kv, x_pad, kv_pad, taps, last_row_only);
    if (taps.any()) result.taps.emplace(name, std::move(out.taps));
    return out.output;
  };
  for (const auto& stage : stages_) {
    const auto q = data::modality_index(stage.query);
    std::vector<torch::Tensor> outputs;
    for (auto key : stage.keys) {
      const auto k = data::modality_index(key);
      const auto name = transformer_name(key, stage.query);
      outputs.push_back(k == q ? run(name, sequences[q], {}, padding[q], {})
                               : run(name, sequences[q], sequences[k], padding[q], padding[k]));
    }
    auto h = outputs.size() == 1 ? outputs[0] : torch::cat(outputs, -1);
    if (stage.memory) h = run(memory_name(stage.query), h, {}, padding[q], {});
    readouts.push_back(readout(h, config_.readout, padding[q]));
  }
  auto [logits, penultimate] = head(torch::cat(readouts, -1));
  result.logits = logits;
  result.penultimate = penultimate;
  return result;
}

std::vector<ParameterRow> MultimodalNetImpl::parameter_table() const {
  std::vector<ParameterRow> rows;
  const auto children = named_children();
  for (const auto& p : geometry_.sequences) {
    if (const auto* module = children.find(p.module)) {
      rows.push_back({p.module, count_parameters(**module)});
    }
  }
  for (const auto& t : geometry_.transformers) {
    rows.push_back({t.name + " (" + t.module + ")", count_parameters(*transformers_.at(t.name))});
  }
  rows.push_back({"head", count_parameters(*head)});
  return rows;
}

int64_t MultimodalNetImpl::parameter_count() const { return count_parameters(*this); }

MultimodalNet build_model(const ModelConfig& config, const InputShape& shape) {
  std::shared_ptr<MultimodalNetImpl> net;
  if (config.role == Role::kTeacher) {
    net = std::make_shared<TeacherImpl>(config, shape);
  } else {
    net = std::make_shared<StudentImpl>(config, shape);
  }
  return MultimodalNet(std::move(net));
}

}  // namespace mmkd::models
