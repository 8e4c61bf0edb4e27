#include "mmkd/core/yaml_config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "mmkd/core/error.h"

namespace mmkd {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      const size_t substitution = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitution});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string closest_match(const std::string& key, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = SIZE_MAX;
  for (const auto& candidate : candidates) {
    const size_t distance = edit_distance(key, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  // A suggestion further than half the key's length away is noise, not help.
  const size_t limit = std::max<size_t>(2, key.size() / 2);
  return best_distance <= limit ? best : std::string();
}

std::string join_key(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

void check_known_keys(const YAML::Node& node, const std::vector<std::string>& allowed,
                      const std::string& path) {
  if (!node || node.IsNull()) return;
  MMKD_CHECK(node.IsMap(), "config key '", path.empty() ? "<root>" : path,
             "': expected a mapping of keys to values");
  for (const auto& entry : node) {
    const auto key = entry.first.as<std::string>();
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    const auto suggestion = closest_match(key, allowed);
    std::string valid;
    for (const auto& name : allowed) valid += (valid.empty() ? "" : ", ") + name;
    MMKD_FAIL("unknown config key '", join_key(path, key), "'",
              suggestion.empty() ? "" : " (did you mean '" + join_key(path, suggestion) + "'?)",
              "; valid keys here: ", valid);
  }
}

namespace {
template <typename T>
const char* type_name();
template <>
const char* type_name<int>() {
  return "an integer";
}
template <>
const char* type_name<int64_t>() {
  return "an integer";
}
template <>
const char* type_name<double>() {
  return "a number";
}
template <>
const char* type_name<bool>() {
  return "true or false";
}
template <>
const char* type_name<std::string>() {
  return "a string";
}
template <>
const char* type_name<std::vector<int64_t>>() {
  return "a list of integers";
}
template <>
const char* type_name<std::vector<std::string>>() {
  return "a list of strings";
}
}  // namespace

template <typename T>
void read_optional(const YAML::Node& node, const std::string& key, const std::string& path,
                   T& value) {
  if (!node || !node.IsMap()) return;
  const YAML::Node child = node[key];
  if (!child) return;
  try {
    value = child.as<T>();
  } catch (const YAML::Exception&) {
    MMKD_FAIL("config key '", join_key(path, key), "': expected ", type_name<T>(), ", got '",
              YAML::Dump(child), "'");
  }
  if constexpr (std::is_same_v<T, double>) {
    // `.inf` and `.nan` are YAML numbers, and 1e300 is a double; every config number ends up
    // in float32 arithmetic, where all three are non-finite.
    MMKD_CHECK(std::isfinite(value) && std::abs(value) <= std::numeric_limits<float>::max(),
               "config key '", join_key(path, key), "': expected a finite number within float32 ",
               "range (|x| <= 3.4e38), got '", YAML::Dump(child), "'");
  }
}

template void read_optional<int>(const YAML::Node&, const std::string&, const std::string&, int&);
template void read_optional<int64_t>(const YAML::Node&, const std::string&, const std::string&,
                                     int64_t&);
template void read_optional<double>(const YAML::Node&, const std::string&, const std::string&,
                                    double&);
template void read_optional<bool>(const YAML::Node&, const std::string&, const std::string&, bool&);
template void read_optional<std::string>(const YAML::Node&, const std::string&, const std::string&,
                                         std::string&);
template void read_optional<std::vector<int64_t>>(const YAML::Node&, const std::string&,
                                                  const std::string&, std::vector<int64_t>&);
template void read_optional<std::vector<std::string>>(const YAML::Node&, const std::string&,
                                                      const std::string&,
                                                      std::vector<std::string>&);

}  // namespace mmkd
