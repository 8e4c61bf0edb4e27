#include "mmkd/study/study_config.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>

#include "mmkd/core/config_file.h"
#include "mmkd/core/error.h"
#include "mmkd/core/yaml_config.h"

namespace mmkd::study {

namespace fs = std::filesystem;

namespace {
/// Documented in docs/reliability.md: a typo in the seed count must not plan a billion runs.
constexpr int64_t kMaxSeeds = 1000;
}  // namespace

std::string StudyConfig::resolve(const std::string& path) const {
  if (fs::path(path).is_absolute()) return path;
  return (fs::path(source).parent_path() / path).lexically_normal().string();
}

std::string StudyConfig::baseline_of(const RowSpec& row, bool distilled) const {
  if (row.baseline == "none") return "";
  if (!row.baseline.empty()) return row.baseline;
  return distilled ? baseline : "";
}

namespace {

std::optional<PaperFigures> parse_paper(const YAML::Node& node, const std::string& path) {
  if (!node) return std::nullopt;
  MMKD_CHECK(node.IsMap(), "config key '", path, "': expected a map {acc7: A, f1: F}");
  check_known_keys(node, {"acc7", "f1"}, path);
  PaperFigures paper;
  read_optional(node, "acc7", path, paper.acc7);
  read_optional(node, "f1", path, paper.f1);
  return paper;
}

RowSpec parse_row(const YAML::Node& node, const std::string& path) {
  MMKD_CHECK(node.IsMap(), "config key '", path, "': expected a map {name: N, config: F, ...}");
  check_known_keys(node, {"name", "config", "set", "paper", "alone", "baseline"}, path);
  RowSpec row;
  read_optional(node, "name", path, row.name);
  read_optional(node, "config", path, row.config);
  read_optional(node, "set", path, row.overrides);
  read_optional(node, "alone", path, row.alone);
  read_optional(node, "baseline", path, row.baseline);
  row.paper = parse_paper(node["paper"], join_key(path, "paper"));
  MMKD_CHECK(!row.name.empty(), "config key '", join_key(path, "name"), "' is required");
  MMKD_CHECK(row.name.find_first_of("/ ") == std::string::npos, "config key '",
             join_key(path, "name"), "': '", row.name, "' must not contain '/' or spaces");
  MMKD_CHECK(!row.config.empty(), "config key '", join_key(path, "config"), "' is required");
  return row;
}

SectionSpec parse_section(const YAML::Node& node, const std::string& path) {
  MMKD_CHECK(node.IsMap(), "config key '", path, "': expected a map {title, teacher, rows}");
  check_known_keys(node, {"title", "teacher", "rows"}, path);
  SectionSpec section;
  read_optional(node, "title", path, section.title);
  if (node["teacher"]) section.teacher = parse_row(node["teacher"], join_key(path, "teacher"));
  const YAML::Node rows = node["rows"];
  MMKD_CHECK(!rows || rows.IsSequence(), "config key '", join_key(path, "rows"),
             "': expected a list of rows");
  if (rows)
    for (size_t i = 0; i < rows.size(); ++i)
      section.rows.push_back(
          parse_row(rows[i], join_key(path, "rows") + "[" + std::to_string(i) + "]"));
  MMKD_CHECK(section.teacher || !section.rows.empty(), "config key '", path,
             "': a section needs a teacher or rows");
  return section;
}

/// A baseline is a row of the study that trains alone (its accuracy is what distillation must
/// beat), and not the row itself.
void check_baselines(const StudyConfig& config, const std::set<std::string>& names) {
  std::set<std::string> lone;
  for (const auto& section : config.sections)
    for (const auto& row : section.rows)
      if (!section.teacher || row.alone) lone.insert(row.name);
  const auto check = [&](const std::string& baseline, const std::string& key,
                         const std::string& self) {
    if (baseline.empty() || baseline == "none") return;
    MMKD_CHECK(names.count(baseline), config.source, ": ", key, " names '", baseline,
               "', which is not a row of the study");
    MMKD_CHECK(lone.count(baseline), config.source, ": ", key, " names '", baseline,
               "', which is not trained alone (a baseline is a student without distillation)");
    MMKD_CHECK(baseline != self, config.source, ": ", key, ": row '", self,
               "' cannot be its own baseline");
  };
  check(config.baseline, "study.baseline", "");
  for (const auto& section : config.sections) {
    if (section.teacher)
      check(section.teacher->baseline, "the baseline of row '" + section.teacher->name + "'",
            section.teacher->name);
    for (const auto& row : section.rows)
      check(row.baseline, "the baseline of row '" + row.name + "'", row.name);
  }
}

/// Every row name once: a teacher may be listed by several sections (trained once) if its spec
/// is the same each time.
void check_names(const StudyConfig& config) {
  std::set<std::string> names, teachers;
  for (const auto& section : config.sections) {
    if (section.teacher) {
      const auto& t = *section.teacher;
      if (teachers.count(t.name)) {
        for (const auto& other : config.sections)
          if (other.teacher && other.teacher->name == t.name)
            MMKD_CHECK(other.teacher->config == t.config && other.teacher->overrides == t.overrides,
                       config.source, ": teacher '", t.name,
                       "' is listed twice with different configs; give each its own name");
      } else {
        MMKD_CHECK(!names.count(t.name), config.source, ": row name '", t.name, "' is used twice");
        teachers.insert(t.name);
        names.insert(t.name);
      }
    }
    for (const auto& row : section.rows) {
      MMKD_CHECK(!names.count(row.name), config.source, ": row name '", row.name,
                 "' is used twice");
      names.insert(row.name);
    }
  }
  const auto known = [&](const std::string& name, const std::string& key) {
    MMKD_CHECK(name.empty() || names.count(name), config.source, ": ", key, " names '", name,
               "', which is not a row of the study");
  };
  if (config.missing_modality) {
    known(config.missing_modality->teacher, "study.missing_modality.teacher");
    known(config.missing_modality->student, "study.missing_modality.student");
  }
  check_baselines(config, names);
  if (config.figure) {
    known(config.figure->teacher, "study.figure.teacher");
    known(config.figure->student, "study.figure.student");
    known(config.figure->baseline, "study.figure.baseline");
  }
}

/// The row's run config exists, and has a `distill:` section exactly when the row is distilled:
/// otherwise a student would silently be trained with default distillation, or alone.
void check_row_config(const StudyConfig& config, const RowSpec& row, bool distilled,
                      const std::string& teacher) {
  const std::string file = config.resolve(row.config);
  MMKD_CHECK(fs::exists(file), config.source, ": row '", row.name, "': config file ", file,
             " does not exist");
  bool has_distill = static_cast<bool>(load_config_file(file)["distill"]);
  for (const auto& o : row.overrides) has_distill |= o.rfind("distill.", 0) == 0;
  MMKD_CHECK(!distilled || has_distill, config.source, ": row '", row.name,
             "' is listed under teacher '", teacher, "' but ", file,
             " has no distill: section; give it one, or mark the row 'alone: true'");
  MMKD_CHECK(distilled || !has_distill, config.source, ": row '", row.name, "': ", file,
             " has a distill: section but the row has no teacher to learn from; list it in a "
             "section with a teacher");
}

}  // namespace

StudyConfig load_study_config(const std::string& path, const std::vector<std::string>& overrides) {
  YAML::Node root = load_config_file(path);
  apply_overrides(root, overrides);
  check_known_keys(root, {"study"}, "");
  const YAML::Node node = root["study"];
  MMKD_CHECK(node && node.IsMap(), path, ": expected a top-level 'study:' map");
  check_known_keys(
      node, {"seeds", "set", "sections", "extended", "missing_modality", "figure", "baseline"},
      "study");
  StudyConfig config;
  config.source = path;
  config.resolved_yaml = YAML::Dump(root) + "\n";
  read_optional(node, "seeds", "study", config.seeds);
  MMKD_CHECK(config.seeds >= 1 && config.seeds <= kMaxSeeds,
             "config key 'study.seeds': expected 1 to ", kMaxSeeds, ", got ", config.seeds,
             " (the plan holds every run of every seed before the first one starts)");
  read_optional(node, "set", "study", config.overrides);
  read_optional(node, "extended", "study", config.extended);
  read_optional(node, "baseline", "study", config.baseline);
  const YAML::Node sections = node["sections"];
  MMKD_CHECK(sections && sections.IsSequence() && sections.size() > 0,
             "config key 'study.sections': expected a non-empty list of sections");
  for (size_t i = 0; i < sections.size(); ++i)
    config.sections.push_back(
        parse_section(sections[i], "study.sections[" + std::to_string(i) + "]"));
  if (const YAML::Node m = node["missing_modality"]) {
    check_known_keys(m, {"teacher", "student", "drop"}, "study.missing_modality");
    MissingModalitySpec spec;
    read_optional(m, "teacher", "study.missing_modality", spec.teacher);
    read_optional(m, "student", "study.missing_modality", spec.student);
    read_optional(m, "drop", "study.missing_modality", spec.drop);
    MMKD_CHECK(!spec.teacher.empty() && !spec.drop.empty(),
               "config key 'study.missing_modality': needs 'teacher' and a 'drop' list");
    config.missing_modality = spec;
  }
  if (const YAML::Node f = node["figure"]) {
    check_known_keys(f, {"teacher", "student", "baseline", "pair", "layers"}, "study.figure");
    FigureSpec spec;
    read_optional(f, "teacher", "study.figure", spec.teacher);
    read_optional(f, "student", "study.figure", spec.student);
    read_optional(f, "baseline", "study.figure", spec.baseline);
    read_optional(f, "pair", "study.figure", spec.pair);
    read_optional(f, "layers", "study.figure", spec.layers);
    MMKD_CHECK(!spec.teacher.empty() && !spec.student.empty(),
               "config key 'study.figure': needs 'teacher' and 'student' row names");
    config.figure = spec;
  }
  check_names(config);
  for (const auto& section : config.sections) {
    if (section.teacher) check_row_config(config, *section.teacher, false, "");
    for (const auto& row : section.rows)
      check_row_config(config, row, section.teacher && !row.alone,
                       section.teacher ? section.teacher->name : "");
  }
  return config;
}

}  // namespace mmkd::study
