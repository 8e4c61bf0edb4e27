// Strict reading of YAML configuration: unknown keys, wrong types and out-of-range values are
// refused with a message naming the key path and what was expected.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace mmkd {

/// Levenshtein distance, used to suggest the closest valid key for a misspelt one.
size_t edit_distance(const std::string& a, const std::string& b);

/// The candidate closest to `key` (empty when none is reasonably close).
std::string closest_match(const std::string& key, const std::vector<std::string>& candidates);

/// Throws mmkd::Error if `node` (a map at `path`, e.g. "model") holds a key not in `allowed`;
/// the message suggests the closest allowed key.
void check_known_keys(const YAML::Node& node, const std::vector<std::string>& allowed,
                      const std::string& path);

/// Reads `node[key]` as T if present (else keeps `value`); a value of the wrong type raises an
/// error naming `path.key` and the expected type.
template <typename T>
void read_optional(const YAML::Node& node, const std::string& key, const std::string& path,
                   T& value);

/// Joins a key path for messages: join_key("train", "lr") == "train.lr".
std::string join_key(const std::string& path, const std::string& key);

}  // namespace mmkd
