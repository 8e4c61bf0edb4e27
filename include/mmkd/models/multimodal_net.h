// The common interface of teachers and students: inputs, outputs, taps by transformer name, the
// shared transformer stages and residual head, and the factory that builds either from a config.
#pragma once

#include <torch/torch.h>

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mmkd/models/architecture.h"
#include "mmkd/models/model_config.h"
#include "mmkd/models/model_geometry.h"
#include "mmkd/nn/transformer_encoder.h"

namespace mmkd::models {

/// Inputs of a forward pass, indexed by data::modality_index (V, A, L).
struct ModelInputs {
  /// [B,T,F] per modality; the student reads only video (audio/text may be undefined).
  std::array<torch::Tensor, 3> features;
  /// Optional bool [B,T], true = padded step. Undefined and config.mask_padding: derived from
  /// the features (an all-zero feature vector is padding). Ignored when !config.mask_padding.
  std::array<torch::Tensor, 3> padding;
};

/// Which taps a forward pass captures and from which transformers.
struct TapRequest {
  nn::TapRequest what;                    ///< tensors per layer (all off = no taps)
  std::vector<std::string> transformers;  ///< names ("V<-A", "mem:V"); empty = every one

  bool wants(const std::string& name) const;
  /// Everything from every transformer.
  static TapRequest all() { return {nn::TapRequest::all(), {}}; }
};

struct ModelOutput {
  torch::Tensor logits;       ///< [B, output_dim]
  torch::Tensor penultimate;  ///< [B, D]: h' = W2 ReLU(W1 h) + h, the vector entering W_out
  std::map<std::string, nn::EncoderTaps> taps;  ///< per requested transformer, per layer
};

/// One row of a summary: a named sub-module and its parameter count.
struct ParameterRow {
  std::string module;
  int64_t parameters;
};

/// MulT's output head: h' = W2 Drop_out(ReLU(W1 h)) + h, logits = W_out h'.
/// 2(D^2+D) + D*out + out parameters (plain nn.Linear init, as MulT).
class ResidualHeadImpl : public torch::nn::Module {
 public:
  ResidualHeadImpl(int64_t in_dim, int64_t out_dim, double out_dropout);
  /// Returns {logits, penultimate h'}.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& h);

  torch::nn::Linear proj1{nullptr}, proj2{nullptr}, out_layer{nullptr};
  double out_dropout;
};
TORCH_MODULE(ResidualHead);

/// Reads a sequence [B,T,D] out to [B,D]: the last step, or the mean over unpadded steps
/// (`padding` bool [B,T], true = padded; a fully padded sequence reads out as zeros).
torch::Tensor readout(const torch::Tensor& x, Readout mode, const torch::Tensor& padding = {});

/// Base of Teacher and Student: projections (subclass) -> stages of transformers -> readout ->
/// head. Transformers are registered under MulT-style module names and addressed by the paper's
/// names.
class MultimodalNetImpl : public torch::nn::Module {
 public:
  MultimodalNetImpl(ModelConfig config, InputShape shape);
  ~MultimodalNetImpl() override = default;

  ModelOutput forward(const ModelInputs& inputs, const TapRequest& request = {});

  const ModelConfig& config() const { return config_; }
  const InputShape& input_shape() const { return geometry_.input; }
  /// Shapes of every sequence, transformer and head vector for the construction InputShape.
  const ModelGeometry& geometry() const { return geometry_; }
  /// Every transformer's paper name, in execution order.
  std::vector<std::string> transformer_names() const { return geometry_.transformer_names(); }
  bool has_transformer(const std::string& name) const { return geometry_.find(name) != nullptr; }
  /// The transformer called `name`; throws mmkd::Error naming the valid ones otherwise.
  nn::TransformerEncoder transformer(const std::string& name) const;

  /// Parameter count per top-level module (projections, transformers, head).
  std::vector<ParameterRow> parameter_table() const;
  int64_t parameter_count() const;
  /// Parameters of the input projections (teacher Conv1Ds, student proxies).
  virtual int64_t projection_parameter_count() const = 0;

 protected:
  /// Projects the inputs to three width-d sequences [B,T,d] and their padding masks (undefined
  /// when none).
  virtual void project(const ModelInputs& inputs, std::array<torch::Tensor, 3>& sequences,
                       std::array<torch::Tensor, 3>& padding) = 0;
  /// Builds the transformers and head; subclasses call it after registering projections.
  void build_stages();

  ModelConfig config_;
  ModelGeometry geometry_;
  std::vector<Stage> stages_;
  std::map<std::string, nn::TransformerEncoder> transformers_;
  ResidualHead head{nullptr};
};
TORCH_MODULE(MultimodalNet);

/// Builds a teacher or student from its config; `shape` supplies the input feature dims (and,
/// for a downsampling student, the target lengths when the config gives none).
MultimodalNet build_model(const ModelConfig& config, const InputShape& shape);

}  // namespace mmkd::models
