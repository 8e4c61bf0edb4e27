#include "mmkd/models/parameter_count.h"

#include "mmkd/models/architecture.h"
#include "mmkd/models/model_geometry.h"

namespace mmkd::models {

int64_t transformer_and_head_parameter_count(const ModelConfig& config) {
  const int64_t d = config.d_model;
  int64_t total = 0;
  int64_t head_dim = 0;
  for (const auto& stage : stages(config)) {
    const auto n = static_cast<int64_t>(stage.keys.size());
    total += n * encoder_parameter_count(d, config.layers);
    if (stage.memory) total += encoder_parameter_count(n * d, config.memory_layers());
    head_dim += (stage.memory ? n : 1) * d;
  }
  return total + head_parameter_count(head_dim, config.output_dim());
}

int64_t teacher_projection_parameter_count(const ModelConfig& config, const InputShape& shape) {
  int64_t total = 0;
  for (const auto& p : model_geometry(config, shape).sequences) {
    if (!p.identity) total += p.in_dim * config.d_model * config.conv_kernel;
  }
  return total;
}

int64_t teacher_parameter_count(const ModelConfig& config, const InputShape& shape) {
  return teacher_projection_parameter_count(config, shape) +
         transformer_and_head_parameter_count(config);
}

}  // namespace mmkd::models
