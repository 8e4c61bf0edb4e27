// Turning a state dict trained by MulT's own code (Tsai et al. 2019) into an mmkd teacher: the
// hyper-parameters are read off the tensor shapes, MulT's parameter names are mapped onto mmkd's,
// and the network is built in the MulT mode (model.compat: mult), which computes what MulT's code
// computes with the same weights.
#pragma once

#include <string>
#include <vector>

#include "mmkd/data/torch_state_dict.h"
#include "mmkd/models/multimodal_net.h"

namespace mmkd::models {

struct MultImportOptions {
  /// MulT's --num_heads: a state dict does not record it (in_proj_weight is [3d, d] for any
  /// head count), so the caller must give it; it must divide the width.
  int64_t heads = 0;
  /// Sequence lengths of the data the teacher will see (the feature sizes come from the
  /// projections' weights).
  InputShape shape = InputShape::mosei();
  /// Dropouts and readout for further training; architecture, width, layers, kernel and output
  /// are replaced by what the tensors say, compat is set to mult and mask_padding to false.
  ModelConfig base;
};

struct MultImport {
  ModelConfig config;
  InputShape shape;
  MultimodalNet model{nullptr};  ///< in eval mode, holding MulT's weights
  /// MulT tensors with nothing to load into: version buffers, memories or projections that
  /// MulT registers but does not use in this configuration.
  std::vector<std::string> ignored;
};

/// Infers the configuration from `state_dict` and loads it into a new network. A state dict that
/// does not fit (missing or unexpected keys, wrong shapes, non-float or non-finite tensors) is
/// refused with the offending keys named; `source` (the file) prefixes every message.
MultImport import_mult(const data::StateDict& state_dict, const MultImportOptions& options,
                       const std::string& source);

/// The MulT state-dict key that holds an mmkd parameter (`head.proj1.weight` -> `proj1.weight`,
/// `...layers.0.layer_norm1.bias` -> `...layers.0.layer_norms.1.bias`).
std::string mult_key(const std::string& mmkd_name);

}  // namespace mmkd::models
