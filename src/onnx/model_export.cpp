#include "mmkd/onnx/model_export.h"

#include <sstream>

#include "mmkd/core/atomic_file.h"
#include "mmkd/core/error.h"
#include "mmkd/core/sha256.h"
#include "mmkd/core/version.h"
#include "mmkd/onnx/layer_graphs.h"

namespace mmkd::onnx {

namespace {

using data::Modality;
using models::Role;

const std::array<std::string, 3> kInputNames = {"video", "audio", "text"};

std::string comma_joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

/// Builds the network's graph module by module, in the order of MultimodalNetImpl::forward.
class NetworkGraph {
 public:
  NetworkGraph(models::MultimodalNetImpl& net, const ExportOptions& options)
      : net_(net), options_(options), layers_(graph_) {}

  OnnxGraph& build() {
    const auto& geometry = net_.geometry();
    const auto& config = net_.config();
    std::array<std::string, 3> inputs;
    for (const auto& name : onnx_input_names(config)) {
      const auto m = data::modality_index(data::parse_modality(name, "ONNX input"));
      inputs[m] = name;
      graph_.input(name, {batch(), steps(m), geometry.input.dim[m]});
    }
    std::array<std::string, 3> sequences, padding;
    if (config.role == Role::kTeacher) {
      project_teacher(inputs, sequences, padding);
    } else {
      project_student(inputs[0], sequences, padding);
    }
    std::vector<std::string> readouts;
    for (const auto& stage : models::stages(config)) {
      readouts.push_back(run_stage(stage, sequences, padding));
    }
    const auto h = readouts.size() == 1 ? readouts[0]
                                        : graph_.node("Concat", readouts, {{"axis", int64_t(-1)}});
    head(h);
    return graph_;
  }

  /// Every parameter of the network must be in the graph: one that is not belongs to a module
  /// the exporter does not know, and leaving it out would compute something else.
  void check_complete(const std::string& source) const {
    for (const auto& p : net_.named_parameters(/*recurse=*/true)) {
      MMKD_CHECK(layers_.exported(p.value()), source, ": parameter '", p.key(),
                 "' has no ONNX mapping in mmkd export (a module the exporter does not know); "
                 "the model cannot be exported");
    }
    for (const auto& b : net_.named_buffers(/*recurse=*/true)) {
      MMKD_FAIL(source, ": buffer '", b.key(), "' has no ONNX mapping in mmkd export");
    }
  }

 private:
  Dim batch() const {
    return options_.dynamic_batch ? Dim{std::string("batch")} : Dim{options_.batch};
  }
  Dim steps(size_t m) const {
    return options_.dynamic_time ? Dim{kInputNames[m] + "_steps"}
                                 : Dim{net_.geometry().input.len[m]};
  }

  torch::Tensor conv_weight(const std::string& module) const {
    const auto child = net_.named_children()[module];
    return child->as<torch::nn::Conv1dImpl>()->weight;
  }

  void project_teacher(const std::array<std::string, 3>& inputs,
                       std::array<std::string, 3>& sequences, std::array<std::string, 3>& padding) {
    for (size_t m = 0; m < 3; ++m) {
      const auto& p = net_.geometry().sequences[m];
      sequences[m] = p.identity
                         ? inputs[m]
                         : layers_.conv1d(p.module, conv_weight(p.module), p.conv, inputs[m]);
      if (net_.config().mask_padding) padding[m] = layers_.zero_padding_mask(inputs[m]);
    }
  }

  void project_student(const std::string& video, std::array<std::string, 3>& sequences,
                       std::array<std::string, 3>& padding) {
    const auto video_padding =
        net_.config().mask_padding ? layers_.zero_padding_mask(video) : std::string();
    for (size_t m = 0; m < 3; ++m) {
      const auto& p = net_.geometry().sequences[m];
      sequences[m] = layers_.conv1d(p.module, conv_weight(p.module), p.conv, video);
      if (video_padding.empty()) continue;
      // As StudentImpl::project: a length-keeping proxy shares the video's mask; a downsampling
      // one marks a step as padding when no real video step falls in its window.
      if (p.conv.stride == 1 && 2 * p.conv.padding == p.conv.kernel - 1) {
        padding[m] = video_padding;
        continue;
      }
      auto& g = graph_;
      const auto valid = g.node("Unsqueeze", {layers_.kept(video_padding), g.ints({1})});
      const auto window = g.initializer("window", torch::ones({1, 1, p.conv.kernel}));
      const auto seen = g.node("Conv", {valid, window},
                               {{"kernel_shape", std::vector<int64_t>{p.conv.kernel}},
                                {"strides", std::vector<int64_t>{p.conv.stride}},
                                {"pads", std::vector<int64_t>{p.conv.padding, p.conv.padding}}});
      padding[m] = g.node("LessOrEqual", {g.node("Squeeze", {seen, g.ints({1})}), g.scalar(0.0f)},
                          {}, "padding");
    }
  }

  std::string transformer(const std::string& name, const std::string& x, const std::string& kv,
                          const std::string& key_padding) {
    const auto& t = net_.geometry().transformer(name);
    const bool last_row = net_.config().readout == models::Readout::kLast && t.read_out;
    return layers_.encoder(t.module, *net_.transformer(name), x, kv, key_padding, last_row);
  }

  std::string run_stage(const models::Stage& stage, const std::array<std::string, 3>& sequences,
                        const std::array<std::string, 3>& padding) {
    const auto q = data::modality_index(stage.query);
    std::vector<std::string> outputs;
    for (const auto key : stage.keys) {
      const auto k = data::modality_index(key);
      const auto name = models::transformer_name(key, stage.query);
      outputs.push_back(k == q ? transformer(name, sequences[q], "", padding[q])
                               : transformer(name, sequences[q], sequences[k], padding[k]));
    }
    auto h =
        outputs.size() == 1 ? outputs[0] : graph_.node("Concat", outputs, {{"axis", int64_t(-1)}});
    if (stage.memory) h = transformer(models::memory_name(stage.query), h, "", padding[q]);
    return readout(h, padding[q]);
  }

  std::string readout(const std::string& h, const std::string& padding) {
    auto& g = graph_;
    if (net_.config().readout == models::Readout::kLast) {
      return g.node("Gather", {h, g.scalar_i64(-1)}, {{"axis", int64_t(1)}}, "readout");
    }
    if (padding.empty()) {
      const auto sum = g.node("ReduceSum", {h, g.ints({1})}, {{"keepdims", int64_t(0)}});
      return g.node("Div", {sum, layers_.as_float(layers_.size(h, 1))}, {}, "readout");
    }
    // The mean over unpadded steps; a fully padded sequence reads out as zeros.
    const auto valid = g.node("Unsqueeze", {layers_.kept(padding), g.ints({2})});  // [B,T,1]
    const auto sum =
        g.node("ReduceSum", {g.node("Mul", {h, valid}), g.ints({1})}, {{"keepdims", int64_t(0)}});
    const auto count = g.node(
        "Max",
        {g.node("ReduceSum", {valid, g.ints({1})}, {{"keepdims", int64_t(0)}}), g.scalar(1.0f)});
    return g.node("Div", {sum, count}, {}, "readout");
  }

  void head(const std::string& h) {
    auto& g = graph_;
    auto& head = *net_.named_children()["head"]->as<models::ResidualHeadImpl>();
    const auto hidden = g.node("Relu", {layers_.linear("head.proj1", *head.proj1, h)});
    const auto penultimate = g.node("Add", {layers_.linear("head.proj2", *head.proj2, hidden), h});
    const auto logits = layers_.linear("head.out_layer", *head.out_layer, penultimate);
    const auto out_dim = net_.geometry().output_dim;
    g.output(logits, "logits", {batch(), out_dim});
    if (net_.config().output == models::OutputMode::kClassification) {
      g.output(g.node("Softmax", {logits}, {{"axis", int64_t(-1)}}), "probabilities",
               {batch(), out_dim});
    }
  }

  models::MultimodalNetImpl& net_;
  ExportOptions options_;
  OnnxGraph graph_;
  LayerGraphs layers_;
};

/// The config as the run's config.yaml holds it (the checkpoint's text and a final newline), so
/// that `sha256sum RUN/config.yaml` prints the digest the model records.
std::string config_file_text(const std::string& config_yaml) {
  return config_yaml.empty() || config_yaml.back() != '\n' ? config_yaml + "\n" : config_yaml;
}

std::map<std::string, std::string> metadata(const models::MultimodalNetImpl& net,
                                            const std::string& config_yaml) {
  const auto& config = net.config();
  const auto& shape = net.input_shape();
  std::vector<std::string> dims, lengths;
  for (const auto& name : onnx_input_names(config)) {
    const auto m = data::modality_index(data::parse_modality(name, "ONNX input"));
    dims.push_back(name + ":" + std::to_string(shape.dim[m]));
    lengths.push_back(name + ":" + std::to_string(shape.len[m]));
  }
  std::map<std::string, std::string> meta = {
      {"mmkd.version", kVersion},
      {"mmkd.model", config.describe()},
      {"mmkd.role", config.role == Role::kTeacher ? "teacher" : "student"},
      {"mmkd.input_features", comma_joined(dims)},
      {"mmkd.trained_steps", comma_joined(lengths)},
      {"mmkd.readout", config.readout == models::Readout::kLast ? "last" : "mean"},
      {"mmkd.config_sha256", sha256_hex(config_file_text(config_yaml))},
  };
  if (config.output == models::OutputMode::kRegression) {
    meta["mmkd.outputs"] = "logits: the sentiment score in [-3,3] (regression)";
  } else {
    std::vector<std::string> labels;
    for (int64_t c = 0; c < config.num_classes; ++c) {
      // The 7-class rule's classes are the sentiments -3..3; other class counts are indices.
      labels.push_back(std::to_string(config.num_classes == 7 ? c - 3 : c));
    }
    meta["mmkd.class_labels"] = comma_joined(labels);
    meta["mmkd.outputs"] = "logits, probabilities (softmax), one column per class label";
  }
  return meta;
}

}  // namespace

void parse_dynamic_axes(const std::string& text, ExportOptions& options) {
  options.dynamic_batch = options.dynamic_time = false;
  if (text == "none") return;
  std::stringstream parts(text);
  std::string axis;
  while (std::getline(parts, axis, ',')) {
    if (axis == "batch") {
      options.dynamic_batch = true;
    } else if (axis == "time") {
      options.dynamic_time = true;
    } else {
      MMKD_FAIL("--dynamic '", text, "': unknown axis '", axis,
                "' (expected batch, time, batch,time or none)");
    }
  }
  MMKD_CHECK(options.dynamic_batch || options.dynamic_time, "--dynamic '", text,
             "': expected batch, time, batch,time or none");
}

std::vector<std::string> onnx_input_names(const models::ModelConfig& config) {
  if (config.role == Role::kStudent) return {kInputNames[0]};
  return {kInputNames.begin(), kInputNames.end()};
}

std::string export_onnx(models::MultimodalNetImpl& net, const ExportOptions& options,
                        const std::string& config_yaml, const std::string& source) {
  ir_version_for_opset(options.opset);  // refuses an unsupported opset before any work
  MMKD_CHECK(options.dynamic_batch || options.batch >= 1, "--batch ", options.batch,
             ": a fixed batch size must be >= 1");
  torch::NoGradGuard no_grad;
  NetworkGraph builder(net, options);
  const auto& graph = builder.build();
  builder.check_complete(source);
  ModelInfo info;
  info.opset = options.opset;
  info.producer_version = kVersion;
  info.graph_name = "mmkd_" + net.config().architecture_name();
  info.metadata = metadata(net, config_yaml);
  return graph.serialize(info);
}

void write_onnx(const std::string& path, models::MultimodalNetImpl& net,
                const ExportOptions& options, const std::string& config_yaml,
                const std::string& source) {
  const auto bytes = export_onnx(net, options, config_yaml, source);
  write_text_atomic(path, bytes);
}

}  // namespace mmkd::onnx
