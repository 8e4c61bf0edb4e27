#include "mmkd/report/run_summary.h"

#include <cmath>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <map>
#include <optional>
#include <regex>
#include <sstream>

#include "mmkd/core/error.h"

namespace mmkd::report {

namespace fs = std::filesystem;

std::vector<RunResult> read_runs(const std::vector<std::string>& dirs) {
  std::vector<RunResult> runs;
  const std::regex seed_suffix("-seed[0-9]+$");
  for (const auto& dir : dirs) {
    RunResult run{dir, "", train::RunMetrics::load(train::RunDir{dir})};
    run.group =
        std::regex_replace(fs::path(dir).lexically_normal().filename().string(), seed_suffix, "");
    runs.push_back(std::move(run));
  }
  return runs;
}

MeanStd mean_and_std(const std::vector<double>& values) {
  MeanStd m;
  for (double v : values) m.mean += v;
  m.mean /= static_cast<double>(values.size());
  double var = 0;
  for (double v : values) var += (v - m.mean) * (v - m.mean);
  m.std = values.size() > 1 ? std::sqrt(var / static_cast<double>(values.size() - 1)) : 0.0;
  return m;
}

std::string mean_std(const std::vector<double>& values, int precision) {
  if (values.empty()) return "–";
  const MeanStd m = mean_and_std(values);
  std::ostringstream out;
  out << std::fixed << std::setprecision(precision) << m.mean << " ± " << m.std;
  return out.str();
}

namespace {

struct Column {
  std::string title;
  std::function<std::optional<double>(const train::RunMetrics&)> value;
  int precision;
};

}  // namespace

std::string summary_table(const std::vector<RunResult>& runs) {
  using train::RunMetrics;
  const std::vector<Column> columns = {
      {"acc7", [](const RunMetrics& m) { return m.test_score("accuracy"); }, 4},
      {"F1 (weighted)", [](const RunMetrics& m) { return m.test_score("f1_weighted"); }, 4},
      {"F1 (macro)", [](const RunMetrics& m) { return m.test_score("f1_macro"); }, 4},
      {"majority", [](const RunMetrics& m) { return std::optional(m.majority_rate); }, 4},
      {"params",
       [](const RunMetrics& m) { return std::optional(static_cast<double>(m.parameters)); }, 0},
      {"latency b1 (ms)", [](const RunMetrics& m) { return m.latency_ms(1); }, 2},
      {"teacher map lift", [](const RunMetrics& m) { return m.mean_lift("teacher"); }, 2},
      {"student map lift", [](const RunMetrics& m) { return m.mean_lift("student"); }, 2},
  };
  std::vector<std::string> order;
  std::map<std::string, std::vector<const RunResult*>> groups;
  for (const auto& run : runs) {
    if (!groups.count(run.group)) order.push_back(run.group);
    groups[run.group].push_back(&run);
  }
  std::ostringstream out;
  out << "| run | seeds |";
  for (const auto& c : columns) out << " " << c.title << " |";
  out << "\n|---|---|";
  for (size_t i = 0; i < columns.size(); ++i) out << "---|";
  out << "\n";
  for (const auto& group : order) {
    out << "| " << group << " | " << groups[group].size() << " |";
    for (const auto& c : columns) {
      std::vector<double> values;
      for (const auto* run : groups[group])
        if (auto v = c.value(run->metrics)) values.push_back(*v);
      out << " " << mean_std(values, c.precision) << " |";
    }
    out << "\n";
  }
  return out.str();
}

}  // namespace mmkd::report
