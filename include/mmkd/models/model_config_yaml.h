// Writing a ModelConfig back as YAML (the resolved config of a run, checkpoint metadata).
#pragma once

#include <yaml-cpp/yaml.h>

#include "mmkd/models/model_config.h"

namespace mmkd::models {

/// Every field, so that parse_model_config(to_yaml(c)) == c.
YAML::Node to_yaml(const ModelConfig& config);

}  // namespace mmkd::models
