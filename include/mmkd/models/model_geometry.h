// A typed description of a network, computed from its config and input shape alone: the three
// projected sequences, every transformer's query/key modality, lengths, width, heads and layers,
// and the head's widths. The network builds its modules from it, and everything that needs a
// shape (summary tables, the cost model, map shapes, pair checks, distillation heads) reads it
// here instead of inspecting modules or display strings.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "mmkd/models/architecture.h"
#include "mmkd/models/conv_geometry.h"
#include "mmkd/models/model_config.h"

namespace mmkd::models {

/// One tensor the model sees, with its shape for batch 1 (e.g. "map A<-V", {1, Tq, Tk}).
struct SequenceRow {
  std::string tensor;
  std::vector<int64_t> shape;
};

/// One projected sequence: a bias-free Conv1D from an input modality to width d.
struct ProjectionGeometry {
  std::string label;   ///< "V", "A", "L" (teacher) or "V_S", "A_S", "L_S" (student proxies)
  std::string module;  ///< registered module name: proj_v ... or proxy_v ...
  Modality source;     ///< the input it reads (the video for every student proxy)
  int64_t in_length = 0;
  int64_t in_dim = 0;
  ConvGeometry conv;
  int64_t length = 0;  ///< output steps
  int64_t width = 0;   ///< d
  /// No module: the input passes unchanged (MulT mode, kernel 1, input width == d).
  bool identity = false;
};

/// One transformer: queries from the `query` sequence, keys/values from `key`'s.
struct TransformerGeometry {
  std::string name;    ///< the paper's name, "V<-A" or "mem:V"
  std::string module;  ///< MulT-style module name, "trans_a_with_v"
  Modality query;
  Modality key;  ///< for a memory, the query's own (concatenated) sequence
  int64_t query_length = 0;
  int64_t key_length = 0;
  int64_t width = 0;
  int64_t heads = 0;
  int64_t layers = 0;
  bool memory = false;    ///< a branch memory over the concatenated branch outputs
  bool read_out = false;  ///< its output goes straight to the readout

  /// Keys and values come from the queries' own sequence (a memory, or V<-V).
  bool self_attention() const { return key == query; }
  /// [Tq, Tk] of its attention maps.
  std::array<int64_t, 2> map_shape() const { return {query_length, key_length}; }
};

struct ModelGeometry {
  std::string description;  ///< ModelConfig::describe(), for messages
  Role role = Role::kTeacher;
  InputShape input;
  std::array<ProjectionGeometry, 3> sequences;    ///< by modality index
  std::vector<TransformerGeometry> transformers;  ///< in execution order
  int64_t readout_dim = 0;  ///< width of the concatenated readouts h (and of h', the penultimate)
  int64_t output_dim = 0;

  int64_t penultimate_dim() const { return readout_dim; }
  std::array<int64_t, 3> lengths() const;
  std::vector<std::string> transformer_names() const;
  const TransformerGeometry* find(const std::string& name) const;
  /// The transformer called `name`; throws mmkd::Error naming the valid ones otherwise.
  const TransformerGeometry& transformer(const std::string& name) const;
  /// Shapes (batch 1) of the inputs, projected sequences, each transformer's logits, map and
  /// output, the readout and the head's vectors: the table `mmkd model summary` prints.
  std::vector<SequenceRow> sequence_table() const;
};

/// The geometry of the network `config` describes for inputs of `shape` (validates both).
ModelGeometry model_geometry(const ModelConfig& config, const InputShape& shape);

/// V_S, A_S, L_S geometries for a student config and input shape: downsample mode maps the
/// video length to [Tv, target audio, target text]; keep mode keeps the video length with
/// proxy_kernels (default conv_kernel).
std::array<ConvGeometry, 3> proxy_geometries(const ModelConfig& config, const InputShape& shape);

}  // namespace mmkd::models
