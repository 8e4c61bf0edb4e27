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
#include "mmkd/core/json_file.h"

namespace mmkd::report {

namespace fs = std::filesystem;

std::vector<RunResult> read_runs(const std::vector<std::string>& dirs) {
  std::vector<RunResult> runs;
  const std::regex seed_suffix("-seed[0-9]+$");
  for (const auto& dir : dirs) {
    const std::string path = dir + "/metrics.json";
    auto metrics = read_json_file(path);
    MMKD_CHECK(metrics, path, ": no such file (has the run finished?)");
    RunResult run;
    run.dir = dir;
    run.group =
        std::regex_replace(fs::path(dir).lexically_normal().filename().string(), seed_suffix, "");
    run.metrics = std::move(*metrics);
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

/// Mean lift over the pairs of one network's event-mass record.
std::optional<double> mean_lift(const nlohmann::json& record) {
  if (!record.is_object() || record.empty()) return std::nullopt;
  double sum = 0;
  int count = 0;
  for (const auto& [pair, values] : record.items()) {
    if (!values.contains("lift") || !values["lift"].is_number()) continue;
    sum += values["lift"].get<double>();
    ++count;
  }
  if (count == 0) return std::nullopt;
  return sum / count;
}

struct Column {
  std::string title;
  std::function<std::optional<double>(const nlohmann::json&)> value;
  int precision;
};

std::optional<double> at(const nlohmann::json& j, const std::vector<std::string>& path) {
  const nlohmann::json* node = &j;
  for (const auto& key : path) {
    if (!node->is_object() || !node->contains(key)) return std::nullopt;
    node = &(*node)[key];
  }
  if (!node->is_number()) return std::nullopt;
  return node->get<double>();
}

}  // namespace

std::string summary_table(const std::vector<RunResult>& runs) {
  const std::vector<Column> columns = {
      {"acc7",
       [](const auto& m) {
         return at(m, {"test", "classification", "accuracy"});
       },
       4},
      {"F1 (weighted)",
       [](const auto& m) {
         return at(m, {"test", "classification", "f1_weighted"});
       },
       4},
      {"F1 (macro)",
       [](const auto& m) {
         return at(m, {"test", "classification", "f1_macro"});
       },
       4},
      {"majority",
       [](const auto& m) {
         return at(m, {"test", "majority_rate"});
       },
       4},
      {"params", [](const auto& m) { return at(m, {"parameters"}); }, 0},
      {"latency b1 (ms)",
       [](const auto& m) {
         return at(m, {"latency", "batch_1", "median_ms"});
       },
       2},
      {"teacher map lift",
       [](const auto& m) {
         return m.contains("event_mass") ? mean_lift(m["event_mass"]["teacher"]) : std::nullopt;
       },
       2},
      {"student map lift",
       [](const auto& m) {
         return m.contains("event_mass") ? mean_lift(m["event_mass"]["student"]) : std::nullopt;
       },
       2},
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
