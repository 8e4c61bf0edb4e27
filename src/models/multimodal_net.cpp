#include "mmkd/models/multimodal_net.h"

#include <algorithm>

#include "mmkd/core/error.h"
#include "mmkd/models/student.h"
#include "mmkd/models/teacher.h"

namespace mmkd::models {

namespace {

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters(/*recurse=*/true)) total += p.numel();
  return total;
}

std::string short_letter(Modality m, Role role) {
  return data::modality_letter(m) + (role == Role::kStudent ? "_S" : "");
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
  namespace F = torch::nn::functional;
  auto hidden = torch::relu(proj1(h));
  if (out_dropout > 0 && is_training()) {
    hidden = F::dropout(hidden, F::DropoutFuncOptions().p(out_dropout).training(true));
  }
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
    : config_(std::move(config)), shape_(shape) {
  config_.validate();
  for (size_t m = 0; m < 3; ++m) {
    MMKD_CHECK(shape_.len[m] > 0 && shape_.dim[m] > 0, "model input shape: length and feature ",
               "size of every modality must be positive, got ", shape_.describe());
  }
  stages_ = stages(config_);
  specs_ = models::transformer_specs(stages_);  // the free function, not the accessor
}

void MultimodalNetImpl::build_stages() {
  const int64_t d = config_.d_model;
  for (const auto& spec : specs_) {
    auto options =
        nn::TransformerEncoderOptions(spec.width_factor * d, config_.heads, config_.layers)
            .attn_dropout(config_.attn_dropout)
            .relu_dropout(config_.relu_dropout)
            .res_dropout(config_.res_dropout)
            .embed_dropout(config_.embed_dropout)
            .future_mask(config_.future_mask)
            // Masks are derived by the model from the raw inputs and passed explicitly:
            // projected sequences are no longer zero on padded steps.
            .mask_padding(false);
    transformers_.emplace(spec.name,
                          register_module(module_name(spec.name), nn::TransformerEncoder(options)));
  }
  int64_t head_dim = 0;
  for (const auto& stage : stages_) {
    head_dim += (stage.memory ? static_cast<int64_t>(stage.keys.size()) : 1) * d;
  }
  head = register_module("head", ResidualHead(head_dim, config_.output_dim(), config_.out_dropout));
}

std::vector<std::string> MultimodalNetImpl::transformer_names() const {
  std::vector<std::string> names;
  for (const auto& spec : specs_) names.push_back(spec.name);
  return names;
}

bool MultimodalNetImpl::has_transformer(const std::string& name) const {
  return transformers_.count(name) > 0;
}

bool MultimodalNetImpl::is_read_out(const std::string& name) const {
  transformer(name);  // validates the name
  for (const auto& spec : specs_) {
    if (spec.name == name) return spec.read_out;
  }
  return false;
}

nn::TransformerEncoder MultimodalNetImpl::transformer(const std::string& name) const {
  const auto it = transformers_.find(name);
  if (it == transformers_.end()) {
    std::string valid;
    for (const auto& n : transformer_names()) valid += (valid.empty() ? "" : ", ") + n;
    MMKD_FAIL("transformer '", name, "' does not exist in ", config_.describe(),
              "; its transformers: ", valid);
  }
  return it->second;
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
    const bool last_row_only = last_readout && is_read_out(name) && !taps.any();
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
  const auto names = projection_names();
  for (size_t m = 0; m < 3; ++m) {
    const auto child = named_children();
    if (const auto* module = child.find(names[m])) {
      rows.push_back({names[m], count_parameters(**module)});
    }
  }
  for (const auto& spec : specs_) {
    rows.push_back({spec.name + " (" + module_name(spec.name) + ")",
                    count_parameters(*transformers_.at(spec.name))});
  }
  rows.push_back({"head", count_parameters(*head)});
  return rows;
}

int64_t MultimodalNetImpl::parameter_count() const { return count_parameters(*this); }

std::vector<SequenceRow> MultimodalNetImpl::sequence_table() const {
  std::vector<SequenceRow> rows;
  const auto lengths = projected_lengths(shape_);
  const int64_t d = config_.d_model;
  const auto role = config_.role;
  for (size_t m = 0; m < 3; ++m) {
    if (role == Role::kStudent && m != 0) continue;
    rows.push_back({"input " + data::modality_letter(data::kModalities[m]),
                    {1, shape_.len[m], shape_.dim[m]}});
  }
  for (size_t m = 0; m < 3; ++m) {
    rows.push_back({"projected " + short_letter(data::kModalities[m], role), {1, lengths[m], d}});
  }
  int64_t head_dim = 0;
  for (const auto& spec : specs_) {
    const auto tq = lengths[data::modality_index(spec.query)];
    const auto tk = lengths[data::modality_index(spec.key)];
    const auto width = spec.width_factor * d;
    if (spec.memory) rows.push_back({spec.name + " input", {1, tq, width}});
    rows.push_back({spec.name + " logits", {1, config_.heads, tq, tk}});
    rows.push_back({spec.name + " map", {1, tq, tk}});
    rows.push_back({spec.name + " output", {1, tq, width}});
  }
  for (const auto& stage : stages_) {
    head_dim += (stage.memory ? static_cast<int64_t>(stage.keys.size()) : 1) * d;
  }
  rows.push_back({"readout concat h", {1, head_dim}});
  rows.push_back({"penultimate h'", {1, head_dim}});
  rows.push_back({"logits", {1, config_.output_dim()}});
  return rows;
}

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
