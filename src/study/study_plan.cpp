#include "mmkd/study/study_plan.h"

#include <algorithm>
#include <map>
#include <set>

#include "mmkd/core/error.h"
#include "mmkd/core/yaml_config.h"
#include "mmkd/distill/kd_term.h"

namespace mmkd::study {

std::string run_name(const std::string& group, int64_t seed) {
  return group + "-seed" + std::to_string(seed);
}

Shard parse_shard(const std::string& text) {
  Shard shard;
  const size_t slash = text.find('/');
  try {
    MMKD_CHECK(slash != std::string::npos, "");
    shard.index = std::stoll(text.substr(0, slash));
    shard.count = std::stoll(text.substr(slash + 1));
  } catch (const std::exception&) {
    MMKD_FAIL("--shard '", text, "': expected i/n, e.g. 1/2");
  }
  MMKD_CHECK(shard.count >= 1 && shard.index >= 1 && shard.index <= shard.count, "--shard '", text,
             "': expected 1 <= i <= n");
  return shard;
}

namespace {

Job make_job(const StudyConfig& config, const RowSpec& row, int64_t seed, size_t unit,
             const std::string& teacher) {
  Job job;
  job.group = row.name;
  job.seed = seed;
  job.config = config.resolve(row.config);
  job.overrides = config.overrides;
  job.overrides.insert(job.overrides.end(), row.overrides.begin(), row.overrides.end());
  job.overrides.push_back("train.seed=" + std::to_string(seed));
  job.teacher = teacher;
  job.unit = unit;
  return job;
}

}  // namespace

std::vector<Job> plan_study(const StudyConfig& config) {
  std::vector<SectionSpec> sections = config.sections;
  if (config.extended)
    for (auto& section : extended_grid()) sections.push_back(std::move(section));
  std::vector<Job> jobs;
  size_t unit = 0;
  for (int64_t seed = 0; seed < config.seeds; ++seed) {
    // A teacher shared by several sections is one unit: it runs once, its students follow it.
    std::map<std::string, size_t> teacher_unit;
    for (const auto& section : sections) {
      if (!section.teacher) {
        for (const auto& row : section.rows)
          jobs.push_back(make_job(config, row, seed, unit++, ""));
        continue;
      }
      const std::string& teacher = section.teacher->name;
      if (!teacher_unit.count(teacher)) {
        teacher_unit[teacher] = unit++;
        jobs.push_back(make_job(config, *section.teacher, seed, teacher_unit[teacher], ""));
      }
      for (const auto& row : section.rows)
        jobs.push_back(
            make_job(config, row, seed, teacher_unit[teacher], row.alone ? "" : teacher));
    }
  }
  return jobs;
}

std::vector<Job> select_shard(const std::vector<Job>& jobs, const Shard& shard) {
  std::vector<Job> selected;
  for (const auto& job : jobs)
    if (static_cast<int64_t>(job.unit % static_cast<size_t>(shard.count)) == shard.index - 1)
      selected.push_back(job);
  return selected;
}

std::vector<Job> select_rows(const std::vector<Job>& jobs, const std::vector<std::string>& rows) {
  std::set<std::string> wanted(rows.begin(), rows.end());
  std::set<std::string> known;
  for (const auto& job : jobs) known.insert(job.group);
  for (const auto& row : rows)
    MMKD_CHECK(known.count(row), "--only: '", row, "' is not a row of the study (",
               closest_match(row, {known.begin(), known.end()}).empty()
                   ? std::string("see --dry-run for the rows")
                   : "did you mean '" + closest_match(row, {known.begin(), known.end()}) + "'?",
               ")");
  std::set<std::string> teachers;  // "<teacher>-seed<k>" that a wanted row learns from
  for (const auto& job : jobs)
    if (wanted.count(job.group) && !job.teacher.empty()) teachers.insert(job.teacher_run_name());
  std::vector<Job> selected;
  for (const auto& job : jobs)
    if (wanted.count(job.group) || teachers.count(job.run_name())) selected.push_back(job);
  return selected;
}

std::vector<SectionSpec> extended_grid() {
  struct Branch {
    int configuration;
    const char* teacher;
  };
  const Branch branches[] = {
      {1, "complete"}, {2, "video"}, {3, "language"}, {4, "audio"}, {5, "complete"}};
  // Every registered KD method, with the variants its term file lists (kd_term.h).
  std::vector<distill::StudyVariant> methods;
  for (const auto& info : distill::kd_terms().methods()) {
    if (info.study_rows.empty()) {
      methods.push_back({info.name, {"distill.method=" + info.name}});
    } else {
      methods.insert(methods.end(), info.study_rows.begin(), info.study_rows.end());
    }
  }
  std::vector<SectionSpec> sections;
  for (const auto& branch : branches) {
    SectionSpec section;
    const std::string c = std::to_string(branch.configuration);
    section.title = "Extended grid, configuration " + c;
    section.teacher = RowSpec{std::string("teacher_") + branch.teacher,
                              std::string("teacher_") + branch.teacher + ".yaml",
                              {},
                              std::nullopt};
    for (const auto& method : methods) {
      RowSpec row{"x" + c + "_" + method.name, "student_" + c + ".yaml", method.overrides,
                  std::nullopt};
      row.overrides.insert(row.overrides.begin(), "distill.configuration=" + c);
      // The study's baseline is a student of architecture 5 with downsampling proxies: only
      // rows of that family are compared with it seed by seed.
      const bool keeps_length = std::find(method.overrides.begin(), method.overrides.end(),
                                          "model.proxy_mode=keep") != method.overrides.end();
      if (branch.configuration == 1 || keeps_length) row.baseline = "none";
      section.rows.push_back(std::move(row));
    }
    sections.push_back(std::move(section));
  }
  return sections;
}

}  // namespace mmkd::study
