#include "mmkd/models/model_geometry.h"

#include "mmkd/core/error.h"

namespace mmkd::models {

namespace {

const char* kTeacherModules[3] = {"proj_v", "proj_a", "proj_l"};
const char* kStudentModules[3] = {"proxy_v", "proxy_a", "proxy_l"};

std::array<ProjectionGeometry, 3> projection_geometries(const ModelConfig& config,
                                                        const InputShape& shape) {
  const bool student = config.role == Role::kStudent;
  const auto convs = student
                         ? proxy_geometries(config, shape)
                         : std::array<ConvGeometry, 3>{same_length_geometry(config.conv_kernel),
                                                       same_length_geometry(config.conv_kernel),
                                                       same_length_geometry(config.conv_kernel)};
  std::array<ProjectionGeometry, 3> result;
  for (size_t m = 0; m < 3; ++m) {
    auto& p = result[m];
    p.label = data::modality_letter(data::kModalities[m]) + (student ? "_S" : "");
    p.module = student ? kStudentModules[m] : kTeacherModules[m];
    // Every proxy is a convolution over the video; each teacher projection reads its own input.
    p.source = student ? Modality::kVideo : data::kModalities[m];
    const auto s = data::modality_index(p.source);
    p.in_length = shape.len[s];
    p.in_dim = shape.dim[s];
    p.conv = convs[m];
    p.length = conv1d_output_length(p.in_length, p.conv);
    p.width = config.d_model;
    // MulT's forward skips a kernel-1 projection whose input already has the model's width.
    p.identity =
        !student && config.mult_compat() && config.conv_kernel == 1 && p.in_dim == config.d_model;
  }
  return result;
}

TransformerGeometry transformer_geometry(const TransformerSpec& spec, const ModelConfig& config,
                                         const std::array<ProjectionGeometry, 3>& sequences) {
  TransformerGeometry t;
  t.name = spec.name;
  t.module = spec.memory ? memory_module_name(spec.query) : module_name(spec.key, spec.query);
  t.query = spec.query;
  t.key = spec.key;
  t.query_length = sequences[data::modality_index(spec.query)].length;
  t.key_length = sequences[data::modality_index(spec.key)].length;
  t.width = spec.width_factor * config.d_model;
  t.heads = config.heads;
  t.layers = spec.memory ? config.memory_layers() : config.layers;
  t.memory = spec.memory;
  t.read_out = spec.read_out;
  return t;
}

}  // namespace

std::array<ConvGeometry, 3> proxy_geometries(const ModelConfig& config, const InputShape& shape) {
  const int64_t tv = shape.len[0];
  if (config.proxy_mode == ProxyMode::kKeep) {
    std::array<ConvGeometry, 3> result;
    for (size_t m = 0; m < 3; ++m) {
      result[m] = same_length_geometry(config.proxy_kernels.empty() ? config.conv_kernel
                                                                    : config.proxy_kernels[m]);
    }
    return result;
  }
  const int64_t ta = config.target_lengths.empty() ? shape.len[1] : config.target_lengths[0];
  const int64_t tl = config.target_lengths.empty() ? shape.len[2] : config.target_lengths[1];
  return {same_length_geometry(config.conv_kernel), downsample_geometry(tv, ta, config.conv_kernel),
          downsample_geometry(tv, tl, config.conv_kernel)};
}

ModelGeometry model_geometry(const ModelConfig& config, const InputShape& shape) {
  config.validate();
  for (size_t m = 0; m < 3; ++m) {
    MMKD_CHECK(shape.len[m] > 0 && shape.dim[m] > 0, "model input shape: length and feature ",
               "size of every modality must be positive, got ", shape.describe());
  }
  ModelGeometry g;
  g.description = config.describe();
  g.role = config.role;
  g.input = shape;
  g.sequences = projection_geometries(config, shape);
  const auto stage_list = stages(config);
  for (const auto& spec : transformer_specs(stage_list))
    g.transformers.push_back(transformer_geometry(spec, config, g.sequences));
  // Each stage reads out one d-wide vector per key, or its memory's concatenation of them.
  for (const auto& stage : stage_list)
    g.readout_dim += (stage.memory ? static_cast<int64_t>(stage.keys.size()) : 1) * config.d_model;
  g.output_dim = config.output_dim();
  return g;
}

std::array<int64_t, 3> ModelGeometry::lengths() const {
  return {sequences[0].length, sequences[1].length, sequences[2].length};
}

std::vector<std::string> ModelGeometry::transformer_names() const {
  std::vector<std::string> names;
  for (const auto& t : transformers) names.push_back(t.name);
  return names;
}

const TransformerGeometry* ModelGeometry::find(const std::string& name) const {
  for (const auto& t : transformers)
    if (t.name == name) return &t;
  return nullptr;
}

const TransformerGeometry& ModelGeometry::transformer(const std::string& name) const {
  if (const auto* t = find(name)) return *t;
  std::string valid;
  for (const auto& n : transformer_names()) valid += (valid.empty() ? "" : ", ") + n;
  MMKD_FAIL("transformer '", name, "' does not exist in ", description,
            "; its transformers: ", valid);
}

std::vector<SequenceRow> ModelGeometry::sequence_table() const {
  std::vector<SequenceRow> rows;
  for (size_t m = 0; m < 3; ++m) {
    if (role == Role::kStudent && m != 0) continue;
    rows.push_back(
        {"input " + data::modality_letter(data::kModalities[m]), {1, input.len[m], input.dim[m]}});
  }
  for (const auto& p : sequences) rows.push_back({"projected " + p.label, {1, p.length, p.width}});
  for (const auto& t : transformers) {
    if (t.memory) rows.push_back({t.name + " input", {1, t.query_length, t.width}});
    rows.push_back({t.name + " logits", {1, t.heads, t.query_length, t.key_length}});
    rows.push_back({t.name + " map", {1, t.query_length, t.key_length}});
    rows.push_back({t.name + " output", {1, t.query_length, t.width}});
  }
  rows.push_back({"readout concat h", {1, readout_dim}});
  rows.push_back({"penultimate h'", {1, readout_dim}});
  rows.push_back({"logits", {1, output_dim}});
  return rows;
}

}  // namespace mmkd::models
