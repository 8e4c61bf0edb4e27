#include "mmkd/core/config_file.h"

#include <filesystem>
#include <map>
#include <set>

#include "mmkd/core/error.h"
#include "mmkd/core/input_file.h"

namespace mmkd {
namespace fs = std::filesystem;

namespace {

YAML::Node parse_file(const std::string& path) {
  MMKD_CHECK(fs::exists(path), path, ": no such config file");
  require_regular_file(path, "a YAML config file");
  try {
    return YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    MMKD_FAIL(path, ": not valid YAML (line ", e.mark.line + 1, ", column ", e.mark.column + 1,
              "): ", e.msg);
  }
}

std::vector<std::string> include_list(const YAML::Node& node, const std::string& path) {
  const YAML::Node includes = node["include"];
  if (!includes) return {};
  if (includes.IsScalar()) return {includes.Scalar()};
  MMKD_CHECK(includes.IsSequence(), path, ": 'include' must be a file name or a list of them");
  std::vector<std::string> names;
  for (const auto& entry : includes) {
    MMKD_CHECK(entry.IsScalar(), path, ": 'include' entry ", names.size() + 1,
               " is not a file name (the list must hold file names only)");
    names.push_back(entry.as<std::string>());
  }
  return names;
}

/// One load_config_file call: the files being loaded (cycle check) and those already merged.
struct IncludeState {
  std::set<std::string> active;
  /// A file included along several paths (a diamond) is read and merged once: without this a
  /// chain of diamonds re-parses its files 2^depth times.
  std::map<std::string, YAML::Node> loaded;
};

YAML::Node load_recursive(const std::string& path, IncludeState& state) {
  const std::string canonical = fs::weakly_canonical(path).string();
  std::set<std::string>& active = state.active;
  MMKD_CHECK(!active.count(canonical), path, ": include cycle");
  const auto done = state.loaded.find(canonical);
  if (done != state.loaded.end()) return done->second;
  active.insert(canonical);
  YAML::Node own = parse_file(path);
  MMKD_CHECK(own.IsMap() || own.IsNull(), path, ": expected a mapping at the top level");
  YAML::Node merged(YAML::NodeType::Map);
  const fs::path directory = fs::path(path).parent_path();
  for (const auto& name : include_list(own, path)) {
    YAML::Node included = load_recursive((directory / name).string(), state);
    merge_config(merged, included);
  }
  if (own.IsMap()) {
    YAML::Node rest = YAML::Clone(own);
    rest.remove("include");
    merge_config(merged, rest);
  }
  active.erase(canonical);
  state.loaded[canonical] = merged;  // merge_config clones what it takes: sharing is safe
  return merged;
}

}  // namespace

YAML::Node load_config_file(const std::string& path) {
  IncludeState state;
  return load_recursive(path, state);
}

void merge_config(YAML::Node& base, const YAML::Node& overlay) {
  if (!overlay.IsMap() || !base.IsMap()) {
    base = YAML::Clone(overlay);
    return;
  }
  for (const auto& entry : overlay) {
    const std::string key = entry.first.as<std::string>();
    YAML::Node child = base[key];
    if (child && child.IsMap() && entry.second.IsMap()) {
      merge_config(child, entry.second);
    } else {
      base[key] = YAML::Clone(entry.second);
    }
  }
}

void apply_override(YAML::Node& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  MMKD_CHECK(eq != std::string::npos && eq > 0, "--set '", assignment,
             "': expected key.path=value, e.g. train.lr=0.0005");
  const std::string path = assignment.substr(0, eq);
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    MMKD_FAIL("--set '", assignment, "': value is not valid YAML: ", e.msg);
  }
  std::vector<std::string> keys;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    keys.push_back(path.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  for (const auto& key : keys) MMKD_CHECK(!key.empty(), "--set '", assignment, "': empty key");
  // yaml-cpp nodes are handles: walking with operator[] on copies edits the shared tree.
  std::vector<YAML::Node> chain{root};
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    YAML::Node next = chain.back()[keys[i]];
    if (!next || !next.IsMap()) {
      chain.back()[keys[i]] = YAML::Node(YAML::NodeType::Map);
      next = chain.back()[keys[i]];
    }
    chain.push_back(next);
  }
  chain.back()[keys.back()] = value;
}

void apply_overrides(YAML::Node& root, const std::vector<std::string>& assignments) {
  for (const auto& assignment : assignments) apply_override(root, assignment);
}

}  // namespace mmkd
