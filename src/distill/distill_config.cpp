#include "mmkd/distill/distill_config.h"

#include <map>

#include "mmkd/core/error.h"
#include "mmkd/core/yaml_config.h"

namespace mmkd::distill {

namespace {

const std::map<std::string, Method>& method_names() {
  static const std::map<std::string, Method> names = {
      {"none", Method::kNone},
      {"crd_final", Method::kCrdFinal},
      {"crd_penultimate", Method::kCrdPenultimate},
      {"crd_post_attention", Method::kCrdPostAttention},
      {"crd_attention_map", Method::kCrdAttentionMap},
      {"edam", Method::kEdam},
      {"ideal_map", Method::kIdealMap}};
  return names;
}

void check_unit(double value, const std::string& key) {
  MMKD_CHECK(value >= 0 && value <= 1, "config key '", key, "': must be in [0,1], got ", value);
}

CrdSettings parse_crd(const YAML::Node& node, const std::string& path) {
  CrdSettings crd;
  if (!node || node.IsNull()) return crd;
  check_known_keys(node,
                   {"embed_dim", "num_negatives", "row_embed_dim", "row_negatives", "temperature",
                    "momentum", "memory_budget_gib"},
                   path);
  read_optional(node, "embed_dim", path, crd.embed_dim);
  read_optional(node, "num_negatives", path, crd.num_negatives);
  read_optional(node, "row_embed_dim", path, crd.row_embed_dim);
  read_optional(node, "row_negatives", path, crd.row_negatives);
  read_optional(node, "temperature", path, crd.temperature);
  read_optional(node, "momentum", path, crd.momentum);
  read_optional(node, "memory_budget_gib", path, crd.memory_budget_gib);
  const auto key = [&](const char* name) { return join_key(path, name); };
  MMKD_CHECK(crd.embed_dim > 0, "config key '", key("embed_dim"), "': must be > 0");
  MMKD_CHECK(crd.num_negatives > 0, "config key '", key("num_negatives"), "': must be > 0");
  MMKD_CHECK(crd.row_embed_dim > 0, "config key '", key("row_embed_dim"), "': must be > 0");
  MMKD_CHECK(crd.row_negatives > 0, "config key '", key("row_negatives"), "': must be > 0");
  MMKD_CHECK(crd.temperature > 0, "config key '", key("temperature"), "': must be > 0");
  check_unit(crd.momentum, key("momentum"));
  MMKD_CHECK(crd.memory_budget_gib > 0, "config key '", key("memory_budget_gib"), "': must be > 0");
  return crd;
}

}  // namespace

std::string method_name(Method method) {
  for (const auto& [name, value] : method_names())
    if (value == method) return name;
  return "?";
}

Method parse_method(const std::string& name, const std::string& key) {
  const auto it = method_names().find(name);
  if (it != method_names().end()) return it->second;
  std::vector<std::string> valid;
  for (const auto& entry : method_names()) valid.push_back(entry.first);
  const std::string suggestion = closest_match(name, valid);
  std::string list;
  for (const auto& v : valid) list += (list.empty() ? "" : ", ") + v;
  MMKD_FAIL("config key '", key, "': unknown method '", name, "'",
            suggestion.empty() ? "" : " (did you mean '" + suggestion + "'?)",
            "; valid methods: ", list);
}

bool uses_attention_maps(Method method) {
  return method == Method::kCrdAttentionMap || method == Method::kEdam ||
         method == Method::kIdealMap;
}

void DistillConfig::validate(const std::string& path) const {
  check_unit(alpha, join_key(path, "alpha"));
  check_unit(beta, join_key(path, "beta"));
  MMKD_CHECK(configuration >= 0 && configuration <= 5, "config key '",
             join_key(path, "configuration"), "': expected 1..5 (or 0 = from the student), got ",
             configuration);
  MMKD_CHECK(temperature > 0, "config key '", join_key(path, "temperature"), "': must be > 0, got ",
             temperature);
}

DistillConfig parse_distill_config(const YAML::Node& node, const std::string& path) {
  DistillConfig config;
  if (!node || node.IsNull()) return config;
  check_known_keys(node,
                   {"teacher", "configuration", "method", "alpha", "beta", "temperature",
                    "direction", "crd", "chance_warning_lift"},
                   path);
  read_optional(node, "teacher", path, config.teacher);
  read_optional(node, "configuration", path, config.configuration);
  std::string method = method_name(config.method);
  read_optional(node, "method", path, method);
  config.method = parse_method(method, join_key(path, "method"));
  read_optional(node, "alpha", path, config.alpha);
  read_optional(node, "beta", path, config.beta);
  read_optional(node, "temperature", path, config.temperature);
  std::string direction = to_string(config.direction);
  read_optional(node, "direction", path, direction);
  try {
    config.direction = parse_edam_direction(direction);
  } catch (const Error& e) {
    MMKD_FAIL("config key '", join_key(path, "direction"), "': ", e.what());
  }
  config.crd = parse_crd(node["crd"], join_key(path, "crd"));
  read_optional(node, "chance_warning_lift", path, config.chance_warning_lift);
  config.validate(path);
  return config;
}

YAML::Node to_yaml(const DistillConfig& config) {
  YAML::Node node;
  node["teacher"] = config.teacher;
  node["configuration"] = config.configuration;
  node["method"] = method_name(config.method);
  node["alpha"] = config.alpha;
  node["beta"] = config.beta;
  node["temperature"] = config.temperature;
  node["direction"] = to_string(config.direction);
  node["crd"]["embed_dim"] = config.crd.embed_dim;
  node["crd"]["num_negatives"] = config.crd.num_negatives;
  node["crd"]["row_embed_dim"] = config.crd.row_embed_dim;
  node["crd"]["row_negatives"] = config.crd.row_negatives;
  node["crd"]["temperature"] = config.crd.temperature;
  node["crd"]["momentum"] = config.crd.momentum;
  node["crd"]["memory_budget_gib"] = config.crd.memory_budget_gib;
  node["chance_warning_lift"] = config.chance_warning_lift;
  return node;
}

}  // namespace mmkd::distill
