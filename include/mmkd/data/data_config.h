// The `data:` section of a run config: a MOSEI-format file, or a built-in synthetic preset.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "mmkd/data/mosei_data.h"
#include "mmkd/data/synthetic.h"

namespace mmkd::data {

struct DataConfig {
  std::string path;  ///< MulT/MMSA pickle; empty = generate `preset` in memory
  std::string preset =
      "small";        ///< synthetic preset (tiny | small | medium | mosei) when path is empty
  uint64_t seed = 0;  ///< synthetic generator seed (independent of the training seed)
  YAML::Node synth;   ///< generator overrides (keys of SynthOptions)

  /// The generator options this config describes (preset + seed + overrides).
  SynthOptions synth_options() const;
  /// "file <path>" or "synthetic <preset> (seed S)".
  std::string describe() const;
};

/// Parses the `data` mapping strictly (keys: path, preset, seed, synth).
DataConfig parse_data_config(const YAML::Node& node, const std::string& path = "data");

/// Loads the file or generates the synthetic data.
MoseiData load_data(const DataConfig& config);

/// The config as YAML (for the resolved config of a run).
YAML::Node to_yaml(const DataConfig& config);

}  // namespace mmkd::data
