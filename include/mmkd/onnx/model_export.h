// `mmkd export`: a teacher or student as an ONNX model that ONNX Runtime runs to mmkd's logits
// (docs/onnx.md). The graph is built from the network's own geometry and weights, in inference
// mode, with the key-padding mask computed inside it from the inputs' all-zero steps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mmkd/models/multimodal_net.h"

namespace mmkd::onnx {

struct ExportOptions {
  int64_t opset = 17;         ///< 17..21 (LayerNormalization needs 17)
  bool dynamic_batch = true;  ///< else the batch is fixed to `batch`
  bool dynamic_time = true;   ///< else each input keeps the length the network was built for
  int64_t batch = 1;          ///< the batch size of a fixed-batch model
};

/// Sets the dynamic axes from --dynamic's text: "batch,time" (either order), "batch", "time" or
/// "none". Errors name the option and the axis.
void parse_dynamic_axes(const std::string& text, ExportOptions& options);

/// The graph inputs a network takes: "video" for a student, "video", "audio", "text" for a
/// teacher ([batch, steps, features] float32). Outputs: "logits" [batch, output_dim], and for
/// classification "probabilities" (softmax of the logits).
std::vector<std::string> onnx_input_names(const models::ModelConfig& config);

/// The serialised ONNX model of `net`. `config_yaml` is the configuration that trained it (its
/// SHA-256 goes into the metadata); `source` names the checkpoint in errors. Refuses, naming it,
/// a parameter of the network that the graph would not use.
std::string export_onnx(models::MultimodalNetImpl& net, const ExportOptions& options,
                        const std::string& config_yaml, const std::string& source);

/// export_onnx written to `path` atomically: an error leaves no partial file.
void write_onnx(const std::string& path, models::MultimodalNetImpl& net,
                const ExportOptions& options, const std::string& config_yaml,
                const std::string& source);

}  // namespace mmkd::onnx
