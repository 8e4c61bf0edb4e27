// Loading YAML configuration files: `include:` composition, `--set key.path=value` overrides.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace mmkd {

/// Loads `path`; a top-level `include:` (a file name or a list of them, relative to `path`'s
/// directory) is loaded first and deep-merged, the including file winning. Cycles and missing
/// files raise mmkd::Error naming the file.
YAML::Node load_config_file(const std::string& path);

/// Deep-merges `overlay` into `base` (maps merge key by key; anything else is replaced).
void merge_config(YAML::Node& base, const YAML::Node& overlay);

/// Applies one `key.path=value` override; the value is parsed as YAML (so `3`, `1e-3`, `true`,
/// `[1,2]` keep their types). Intermediate maps are created as needed.
void apply_override(YAML::Node& root, const std::string& assignment);

/// Applies every override in order.
void apply_overrides(YAML::Node& root, const std::vector<std::string>& assignments);

}  // namespace mmkd
