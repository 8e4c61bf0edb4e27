#include "mmkd/study/study_table.h"

#include <cmath>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "mmkd/core/error.h"
#include "mmkd/core/json_file.h"
#include "mmkd/report/run_summary.h"
#include "mmkd/study/study_plan.h"

namespace mmkd::study {

namespace fs = std::filesystem;

std::string missing_modality_file(const std::string& drop) { return "missing-" + drop + ".json"; }

std::string find_in_runs(const std::vector<std::string>& roots, const std::string& run,
                         const std::string& file) {
  for (const auto& root : roots) {
    const std::string path = root + "/runs/" + run + "/" + file;
    if (fs::exists(path)) return path;
  }
  return "";
}

namespace {

std::optional<nlohmann::json> find_run_file(const std::vector<std::string>& roots,
                                            const std::string& run, const std::string& file) {
  const std::string path = find_in_runs(roots, run, file);
  if (path.empty()) return std::nullopt;
  return read_json_file(path);
}

void push(std::vector<double>& into, const nlohmann::json& j, const char* pointer,
          double scale = 1.0) {
  const nlohmann::json::json_pointer p(pointer);
  if (j.contains(p) && j.at(p).is_number()) into.push_back(j.at(p).get<double>() * scale);
}

/// The mean lift over the pairs of `record[network]` (metrics.json's event_mass, or
/// event-mass.json).
void push_lift(std::vector<double>& into, const nlohmann::json& record, const char* network) {
  const nlohmann::json& j = record.contains("event_mass") ? record["event_mass"] : record;
  if (!j.contains(network)) return;
  double sum = 0;
  int count = 0;
  for (const auto& [pair, v] : j[network].items())
    if (v.contains("lift") && v["lift"].is_number()) sum += v["lift"].get<double>(), ++count;
  if (count) into.push_back(sum / count);
}

TableRow read_row(const StudyConfig& config, const std::vector<std::string>& roots,
                  const std::string& section, const RowSpec& spec, const std::string& kind) {
  TableRow row;
  row.section = section;
  row.name = spec.name;
  row.kind = kind;
  row.paper = spec.paper;
  row.expected = config.seeds;
  for (int64_t seed = 0; seed < config.seeds; ++seed) {
    const std::string run = run_name(spec.name, seed);
    const auto m = find_run_file(roots, run, "metrics.json");
    if (!m) continue;
    push(row.acc7, *m, "/test/classification/accuracy", 100);
    push(row.f1, *m, "/test/classification/f1_weighted", 100);
    push(row.f1_macro, *m, "/test/classification/f1_macro", 100);
    push(row.majority, *m, "/test/majority_rate", 100);
    push(row.parameters, *m, "/parameters");
    nlohmann::json latency = m->contains("latency") ? (*m)["latency"] : nlohmann::json::object();
    if (auto again = find_run_file(roots, run, kLatencyFile)) latency = std::move(*again);
    push(row.latency_1, latency, "/batch_1/median_ms");
    push(row.latency_64, latency, "/batch_64/median_ms");
    push_lift(row.teacher_lift, *m, "teacher");
    push_lift(row.student_lift, *m, "student");
    // A teacher's or lone student's own maps, measured by the study after the run.
    if (const auto own = find_run_file(roots, run, kEventMassFile); own && kind != "student")
      push_lift(kind == "teacher" ? row.teacher_lift : row.student_lift, *own, "network");
  }
  return row;
}

TableRow read_missing_row(const StudyConfig& config, const std::vector<std::string>& roots,
                          const std::string& teacher, const std::string& drop) {
  TableRow row;
  row.section = "Missing modalities (teacher evaluated with inputs zeroed)";
  row.name = teacher + " without " + drop;
  row.kind = "missing-modality";
  row.expected = config.seeds;
  for (int64_t seed = 0; seed < config.seeds; ++seed) {
    const auto m = find_run_file(roots, run_name(teacher, seed), missing_modality_file(drop));
    if (!m) continue;
    push(row.acc7, *m, "/classification/accuracy", 100);
    push(row.f1, *m, "/classification/f1_weighted", 100);
    push(row.f1_macro, *m, "/classification/f1_macro", 100);
  }
  return row;
}

std::string cell(const std::vector<double>& v, int precision) {
  return report::mean_std(v, precision);
}

std::string mean_only(const std::vector<double>& v, int precision) {
  if (v.empty()) return "–";
  std::ostringstream out;
  out << std::fixed << std::setprecision(precision) << report::mean_and_std(v).mean;
  return out.str();
}

std::string paper_cell(const std::optional<PaperFigures>& paper, bool acc) {
  if (!paper) return "";
  std::ostringstream out;
  out << std::fixed << std::setprecision(2) << (acc ? paper->acc7 : paper->f1);
  return out.str();
}

}  // namespace

std::vector<TableRow> collect_table(const StudyConfig& config,
                                    const std::vector<std::string>& roots) {
  std::vector<SectionSpec> sections = config.sections;
  if (config.extended)
    for (auto& s : extended_grid()) sections.push_back(std::move(s));
  std::vector<TableRow> rows;
  for (const auto& section : sections) {
    if (section.teacher)
      rows.push_back(read_row(config, roots, section.title, *section.teacher, "teacher"));
    for (const auto& spec : section.rows)
      rows.push_back(read_row(config, roots, section.title, spec,
                              section.teacher && !spec.alone ? "student" : "alone"));
  }
  if (config.missing_modality) {
    for (const auto& drop : config.missing_modality->drop)
      rows.push_back(read_missing_row(config, roots, config.missing_modality->teacher, drop));
    for (const auto& section : sections)
      for (const auto& spec : section.rows)
        if (spec.name == config.missing_modality->student) {
          TableRow row = read_row(config, roots, rows.back().section, spec, "alone");
          row.name += " (video only)";
          rows.push_back(row);
        }
  }
  return rows;
}

const std::vector<std::string>& table_columns() {
  static const std::vector<std::string> columns = {"network",
                                                   "kind",
                                                   "seeds",
                                                   "acc7 (%)",
                                                   "F1 (%)",
                                                   "paper acc7",
                                                   "paper F1",
                                                   "F1 macro (%)",
                                                   "params",
                                                   "latency b1 (ms)",
                                                   "latency b64 (ms)",
                                                   "teacher map lift",
                                                   "student map lift"};
  return columns;
}

std::vector<std::string> table_cells(const TableRow& row) {
  return {row.name,
          row.kind,
          std::to_string(row.acc7.size()) + "/" + std::to_string(row.expected),
          cell(row.acc7, 2),
          cell(row.f1, 2),
          paper_cell(row.paper, true),
          paper_cell(row.paper, false),
          cell(row.f1_macro, 2),
          mean_only(row.parameters, 0),
          mean_only(row.latency_1, 2),
          mean_only(row.latency_64, 1),
          cell(row.teacher_lift, 2),
          cell(row.student_lift, 2)};
}

std::string table_markdown(const std::vector<TableRow>& rows) {
  const auto& columns = table_columns();
  std::ostringstream out;
  out << "|";
  for (const auto& c : columns) out << " " << c << " |";
  out << "\n|";
  for (size_t i = 0; i < columns.size(); ++i) out << "---|";
  out << "\n";
  std::string section;
  for (const auto& row : rows) {
    if (row.section != section) {
      section = row.section;
      out << "| **" << section << "** |" << std::string(columns.size() - 1, '|') << "\n";
    }
    out << "|";
    for (const auto& c : table_cells(row)) out << " " << c << " |";
    out << "\n";
  }
  std::vector<double> majority;
  for (const auto& row : rows)
    majority.insert(majority.end(), row.majority.begin(), row.majority.end());
  if (!majority.empty())
    out << "\nMajority-class rate on test: " << mean_only(majority, 2) << " %.\n";
  return out.str();
}

std::string table_csv(const std::vector<TableRow>& rows) {
  const auto stats = [](const std::vector<double>& v) {
    if (v.empty()) return std::string(",");
    const report::MeanStd m = report::mean_and_std(v);
    std::ostringstream out;
    out << std::setprecision(6) << m.mean << "," << m.std;
    return out.str();
  };
  std::ostringstream out;
  out << "section,network,kind,seeds,acc7_mean,acc7_std,f1_mean,f1_std,paper_acc7,paper_f1,"
         "f1_macro_mean,f1_macro_std,parameters,latency_b1_ms,latency_b64_ms,teacher_lift_mean,"
         "teacher_lift_std,student_lift_mean,student_lift_std\n";
  for (const auto& row : rows) {
    out << '"' << row.section << "\"," << row.name << "," << row.kind << "," << row.acc7.size()
        << "," << stats(row.acc7) << "," << stats(row.f1) << "," << paper_cell(row.paper, true)
        << "," << paper_cell(row.paper, false) << "," << stats(row.f1_macro) << ","
        << (row.parameters.empty() ? "" : mean_only(row.parameters, 0)) << ","
        << (row.latency_1.empty() ? "" : mean_only(row.latency_1, 3)) << ","
        << (row.latency_64.empty() ? "" : mean_only(row.latency_64, 3)) << ","
        << stats(row.teacher_lift) << "," << stats(row.student_lift) << "\n";
  }
  return out.str();
}

}  // namespace mmkd::study
