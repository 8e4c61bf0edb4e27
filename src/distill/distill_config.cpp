#include "mmkd/distill/distill_config.h"

#include <algorithm>

#include "mmkd/core/error.h"
#include "mmkd/core/yaml_config.h"

namespace mmkd::distill {

namespace {

void check_unit(double value, const std::string& key) {
  MMKD_CHECK(value >= 0 && value <= 1, "config key '", key, "': must be in [0,1], got ", value);
}

bool declares(const KdTermInfo& info, const std::string& key) {
  return std::find(info.keys.begin(), info.keys.end(), key) != info.keys.end();
}

/// One entry of the list form.
TermSpec parse_term(const YAML::Node& node, const std::string& path) {
  MMKD_CHECK(node.IsMap(), "config key '", path,
             "': expected a mapping such as {method: edam, weight: 1.0}");
  MMKD_CHECK(node["method"], "config key '", path, "': missing 'method' (one of ", kd_term_list(),
             ")");
  TermSpec spec;
  spec.path = path;
  std::string method;
  read_optional(node, "method", path, method);
  YAML::Node options;
  for (const auto& entry : node) {
    const auto key = entry.first.as<std::string>();
    if (key != "method" && key != "weight" && key != "pairs")
      options[key] = YAML::Clone(entry.second);
  }
  const KdTermInfo& info = kd_terms().resolve(method, join_key(path, "method"), &options);
  spec.method = info.name;
  std::vector<std::string> known = {"method", "weight", "pairs"};
  known.insert(known.end(), info.keys.begin(), info.keys.end());
  check_known_keys(node, known, path);
  read_optional(node, "weight", path, spec.weight);
  MMKD_CHECK(spec.weight >= 0, "config key '", join_key(path, "weight"), "': must be >= 0, got ",
             spec.weight);
  if (node["pairs"]) {
    MMKD_CHECK(node["pairs"].IsSequence(), "config key '", join_key(path, "pairs"),
               "': expected a list of transformer names such as [\"V<-A\"]");
    for (const auto& p : node["pairs"]) spec.pairs.push_back(p.as<std::string>());
  }
  spec.options = options;
  return spec;
}

/// The single-method form as one term: `method` and `beta`, with the top-level `temperature`
/// and `direction` or the `crd:` section, whichever the method reads.
std::vector<TermSpec> parse_single_method(const YAML::Node& node, const std::string& path) {
  std::string method = "edam";
  read_optional(node, "method", path, method);
  double beta = 1.0;
  read_optional(node, "beta", path, beta);
  check_unit(beta, join_key(path, "beta"));
  if (method == "none") return {};
  YAML::Node options;
  const KdTermInfo& info = kd_terms().resolve(method, join_key(path, "method"), &options);
  for (const char* key : {"temperature", "direction"}) {
    if (node[key] && info.legacy_section.empty() && declares(info, key)) options[key] = node[key];
  }
  if (node["crd"] && info.legacy_section == "crd") {
    MMKD_CHECK(node["crd"].IsMap(), "config key '", join_key(path, "crd"), "': expected a mapping");
    for (const auto& entry : node["crd"]) {
      const auto key = entry.first.as<std::string>();
      MMKD_CHECK(declares(info, key), "unknown config key '", join_key(join_key(path, "crd"), key),
                 "'");
      options[key] = YAML::Clone(entry.second);
    }
  }
  TermSpec spec;
  spec.method = info.name;
  spec.weight = beta;
  spec.options = options;
  spec.path = path;
  return {spec};
}

}  // namespace

void DistillConfig::validate(const std::string& path) const {
  check_unit(alpha, join_key(path, "alpha"));
  MMKD_CHECK(teacher_cache_mb >= 0, "config key '", join_key(path, "teacher_cache_mb"),
             "': must be >= 0 (megabytes; 0 = no cache), got ", teacher_cache_mb);
  MMKD_CHECK(configuration >= 0 && configuration <= 5, "config key '",
             join_key(path, "configuration"), "': expected 1..5 (or 0 = from the student), got ",
             configuration);
}

DistillConfig parse_distill_config(const YAML::Node& node, const std::string& path) {
  DistillConfig config;
  if (!node || node.IsNull()) {
    config.terms = parse_single_method(YAML::Node(YAML::NodeType::Map), path);
    return config;
  }
  check_known_keys(node,
                   {"teacher", "configuration", "alpha", "chance_warning_lift", "teacher_cache_mb",
                    "terms", "method", "beta", "temperature", "direction", "crd"},
                   path);
  read_optional(node, "teacher", path, config.teacher);
  read_optional(node, "configuration", path, config.configuration);
  read_optional(node, "alpha", path, config.alpha);
  read_optional(node, "chance_warning_lift", path, config.chance_warning_lift);
  read_optional(node, "teacher_cache_mb", path, config.teacher_cache_mb);
  if (node["terms"]) {
    for (const char* legacy : {"method", "beta", "temperature", "direction", "crd"}) {
      MMKD_CHECK(!node[legacy], "config key '", join_key(path, legacy), "': the list form (",
                 join_key(path, "terms"), ") sets this per term, e.g. terms: [{method: edam, ",
                 "weight: 1.0, temperature: 2}]");
    }
    MMKD_CHECK(node["terms"].IsSequence(), "config key '", join_key(path, "terms"),
               "': expected a list such as [{method: crd, level: penultimate, weight: 0.8}]");
    for (size_t i = 0; i < node["terms"].size(); ++i) {
      config.terms.push_back(
          parse_term(node["terms"][i], join_key(path, "terms") + "[" + std::to_string(i) + "]"));
    }
  } else {
    config.terms = parse_single_method(node, path);
  }
  config.validate(path);
  return config;
}

}  // namespace mmkd::distill
