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
#include "mmkd/train/run_metrics.h"

namespace mmkd::study {

namespace fs = std::filesystem;

std::optional<train::RunDir> find_run(const std::vector<std::string>& roots,
                                      const std::string& run) {
  for (const auto& root : roots) {
    train::RunDir dir = train::study_run_dir(root, run);
    if (dir.finished()) return dir;
  }
  return std::nullopt;
}

namespace {

void push(std::vector<double>& into, std::optional<double> value, double scale = 1.0) {
  if (value) into.push_back(*value * scale);
}

std::optional<double> scaled(std::optional<double> value, double scale) {
  if (value) *value *= scale;
  return value;
}

std::map<int64_t, double> acc7_by_seed(const TableRow& row) {
  std::map<int64_t, double> out;
  for (const auto& [seed, r] : row.by_seed)
    if (r.acc7) out[seed] = *r.acc7;
  return out;
}

/// The lone row called `name` (not the copy the missing-modality section shows).
const TableRow* find_lone_row(const std::vector<TableRow>& rows, const std::string& name) {
  for (const auto& row : rows)
    if (row.name == name && row.kind == "alone") return &row;
  return nullptr;
}

/// Each row with a baseline: its acc7 minus the baseline's, seed by seed.
void compare_with_baselines(std::vector<TableRow>& rows) {
  for (auto& row : rows) {
    if (row.baseline.empty()) continue;
    if (const TableRow* base = find_lone_row(rows, row.baseline))
      row.vs_baseline = paired_difference(acc7_by_seed(row), acc7_by_seed(*base));
  }
}

std::string signed_fixed(double v, int precision) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(precision) << std::showpos << v;
  return out.str();
}

std::string difference_cell(const TableRow& row) {
  if (!row.vs_baseline) return row.baseline.empty() ? "" : "–";
  const PairedDifference& d = *row.vs_baseline;
  if (d.n < 2) return signed_fixed(d.mean, 2) + " (1 seed)";
  return signed_fixed(d.mean, 2) + " [" + signed_fixed(d.ci_low, 2) + ", " +
         signed_fixed(d.ci_high, 2) + "]";
}

std::string p_value_cell(const TableRow& row) {
  if (!row.vs_baseline || row.vs_baseline->n < 2) return "";
  const double p = row.vs_baseline->p;
  if (p < 0.001) return "<0.001";
  std::ostringstream out;
  out << std::fixed << std::setprecision(3) << p;
  return out.str();
}

TableRow read_row(const StudyConfig& config, const std::vector<std::string>& roots,
                  const std::string& section, const RowSpec& spec, const std::string& kind) {
  TableRow row;
  row.section = section;
  row.name = spec.name;
  row.kind = kind;
  row.paper = spec.paper;
  row.expected = config.seeds;
  row.baseline = config.baseline_of(spec, kind == "student");
  for (int64_t seed = 0; seed < config.seeds; ++seed) {
    const auto dir = find_run(roots, run_name(spec.name, seed));
    if (!dir) continue;
    const train::RunMetrics m = train::RunMetrics::load(*dir);
    SeedResult& r = row.by_seed[seed];
    r.acc7 = scaled(m.test_score("accuracy"), 100);
    r.f1 = scaled(m.test_score("f1_weighted"), 100);
    r.f1_macro = scaled(m.test_score("f1_macro"), 100);
    r.teacher_lift = m.mean_lift("teacher");
    r.student_lift = m.mean_lift("student");
    // A teacher's or lone student's own maps, measured by the study after the run.
    if (const auto own = train::read_event_mass_file(*dir); own && kind != "student")
      (kind == "teacher" ? r.teacher_lift : r.student_lift) = train::mean_event_mass_lift(*own);
    if (row.methods.empty()) row.methods = m.kd_methods();
    push(row.acc7, r.acc7);
    push(row.f1, r.f1);
    push(row.f1_macro, r.f1_macro);
    push(row.majority, m.majority_rate, 100);
    push(row.parameters, static_cast<double>(m.parameters));
    nlohmann::json latency = m.latency;
    if (auto again = read_json_file(dir->latency())) latency = std::move(*again);
    push(row.latency_1, train::latency_median_ms(latency, 1));
    push(row.latency_64, train::latency_median_ms(latency, 64));
    push(row.teacher_lift, r.teacher_lift);
    push(row.student_lift, r.student_lift);
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
    const auto dir = find_run(roots, run_name(teacher, seed));
    if (!dir) continue;
    const auto m = read_json_file(dir->missing_modality(drop));
    if (!m) continue;
    push(row.acc7, train::eval_score(*m, "accuracy"), 100);
    push(row.f1, train::eval_score(*m, "f1_weighted"), 100);
    push(row.f1_macro, train::eval_score(*m, "f1_macro"), 100);
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
  compare_with_baselines(rows);
  return rows;
}

std::vector<LiftGainPoint> lift_gain_points(const std::vector<TableRow>& rows) {
  std::vector<LiftGainPoint> points;
  for (const auto& row : rows) {
    if (row.kind != "student" || row.baseline.empty()) continue;
    const TableRow* base = find_lone_row(rows, row.baseline);
    if (!base) continue;
    for (const auto& [seed, r] : row.by_seed) {
      const auto b = base->by_seed.find(seed);
      if (!r.acc7 || !r.teacher_lift || b == base->by_seed.end() || !b->second.acc7) continue;
      points.push_back({row.name, row.methods, seed, *r.teacher_lift, *r.acc7 - *b->second.acc7});
    }
  }
  return points;
}

std::string runs_csv(const std::vector<TableRow>& rows) {
  const auto number = [](const std::optional<double>& v) {
    if (!v) return std::string();
    std::ostringstream out;
    out << std::setprecision(6) << *v;
    return out.str();
  };
  std::ostringstream out;
  out << "section,network,kind,seed,methods,acc7,f1,f1_macro,teacher_lift,student_lift,baseline,"
         "baseline_acc7,gain\n";
  for (const auto& row : rows) {
    if (row.kind == "missing-modality") continue;
    const TableRow* base = row.baseline.empty() ? nullptr : find_lone_row(rows, row.baseline);
    std::string methods;
    for (const auto& m : row.methods) methods += (methods.empty() ? "" : "+") + m;
    for (const auto& [seed, r] : row.by_seed) {
      std::optional<double> base_acc, gain;
      if (base)
        if (const auto b = base->by_seed.find(seed); b != base->by_seed.end())
          base_acc = b->second.acc7;
      if (base_acc && r.acc7) gain = *r.acc7 - *base_acc;
      out << '"' << row.section << "\"," << row.name << "," << row.kind << "," << seed << ","
          << methods << "," << number(r.acc7) << "," << number(r.f1) << "," << number(r.f1_macro)
          << "," << number(r.teacher_lift) << "," << number(r.student_lift) << "," << row.baseline
          << "," << number(base_acc) << "," << number(gain) << "\n";
    }
  }
  return out.str();
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
                                                   "student map lift",
                                                   "baseline",
                                                   "Δ acc7 vs baseline [95% CI]",
                                                   "p (paired t)"};
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
          cell(row.student_lift, 2),
          row.baseline,
          difference_cell(row),
          p_value_cell(row)};
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
         "teacher_lift_std,student_lift_mean,student_lift_std,baseline,gain_seeds,gain_mean,"
         "gain_ci_low,gain_ci_high,gain_p\n";
  for (const auto& row : rows) {
    out << '"' << row.section << "\"," << row.name << "," << row.kind << "," << row.acc7.size()
        << "," << stats(row.acc7) << "," << stats(row.f1) << "," << paper_cell(row.paper, true)
        << "," << paper_cell(row.paper, false) << "," << stats(row.f1_macro) << ","
        << (row.parameters.empty() ? "" : mean_only(row.parameters, 0)) << ","
        << (row.latency_1.empty() ? "" : mean_only(row.latency_1, 3)) << ","
        << (row.latency_64.empty() ? "" : mean_only(row.latency_64, 3)) << ","
        << stats(row.teacher_lift) << "," << stats(row.student_lift) << "," << row.baseline;
    if (const auto& d = row.vs_baseline)
      out << "," << d->n << "," << std::setprecision(6) << d->mean << "," << d->ci_low << ","
          << d->ci_high << "," << (d->n < 2 ? std::string() : std::to_string(d->p)) << "\n";
    else
      out << ",,,,,\n";
  }
  return out.str();
}

}  // namespace mmkd::study
