#include "mmkd/data/data_config.h"

#include <cstdint>
#include <utility>

#include "mmkd/core/error.h"
#include "mmkd/core/yaml_config.h"
#include "mmkd/data/mosei_io.h"

namespace mmkd::data {

SynthOptions DataConfig::synth_options() const {
  SynthOptions options = synth_preset(preset);
  options.seed = seed;
  if (synth && !synth.IsNull()) apply_synth_yaml(options, synth, "data.synth");
  return options;
}

std::string DataConfig::describe() const {
  if (!path.empty()) return "file " + path;
  return "synthetic " + preset + " (seed " + std::to_string(seed) + ")";
}

DataConfig parse_data_config(const YAML::Node& node, const std::string& path) {
  DataConfig config;
  if (!node || node.IsNull()) return config;
  check_known_keys(node, {"path", "preset", "seed", "synth"}, path);
  read_optional(node, "path", path, config.path);
  read_optional(node, "preset", path, config.preset);
  int64_t seed = 0;
  read_optional(node, "seed", path, seed);
  MMKD_CHECK(seed >= 0, "config key '", join_key(path, "seed"), "': expected a seed >= 0, got ",
             seed);
  config.seed = static_cast<uint64_t>(seed);
  if (node["synth"]) config.synth = YAML::Clone(node["synth"]);
  // Validate eagerly so a typo in data.synth fails before any training starts.
  if (config.path.empty()) validate_synth_options(config.synth_options());
  return config;
}

MoseiData load_data(const DataConfig& config) {
  if (!config.path.empty()) return load_mosei(config.path);
  const SynthOptions options = config.synth_options();
  // The generator accepts empty splits (its tests use them); a run needs every split.
  for (const auto& [name, n] : {std::pair<const char*, int64_t>{"train", options.n_train},
                                {"valid", options.n_valid},
                                {"test", options.n_test}})
    MMKD_CHECK(n >= 1, "config key 'data.synth.n_", name, "': expected at least 1 sample, got ", n);
  return generate_synthetic(options);
}

YAML::Node to_yaml(const DataConfig& config) {
  YAML::Node node;
  node["path"] = config.path;
  node["preset"] = config.preset;
  node["seed"] = config.seed;
  if (config.synth && !config.synth.IsNull()) node["synth"] = YAML::Clone(config.synth);
  return node;
}

}  // namespace mmkd::data
