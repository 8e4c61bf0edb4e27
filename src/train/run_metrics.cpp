#include "mmkd/train/run_metrics.h"

#include "mmkd/core/atomic_file.h"
#include "mmkd/core/error.h"
#include "mmkd/core/json_file.h"

namespace mmkd::train {

namespace {

std::optional<double> number_at(const nlohmann::json& j, const nlohmann::json::json_pointer& p) {
  if (!j.contains(p) || !j.at(p).is_number()) return std::nullopt;
  return j.at(p).get<double>();
}

template <typename T>
T read_field(const nlohmann::json& j, const char* key, const std::string& source) {
  MMKD_CHECK(j.contains(key), source, ": no key '", key, "' (is it an mmkd metrics.json?)");
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    MMKD_FAIL(source, ": key '", key, "' has the wrong type (", j.at(key).type_name(), ")");
  }
}

// The core keys are written by finish_run; everything else is an objective's section.
const char* kCoreKeys[] = {"model",  "data", "best_epoch", "best_val_loss",
                           "epochs", "test", "parameters", "projection_parameters",
                           "latency"};

}  // namespace

std::optional<double> eval_score(const nlohmann::json& eval, const std::string& name) {
  return number_at(eval, nlohmann::json::json_pointer("/classification/" + name));
}

std::optional<double> latency_median_ms(const nlohmann::json& record, int64_t batch) {
  return number_at(record,
                   nlohmann::json::json_pointer("/batch_" + std::to_string(batch) + "/median_ms"));
}

std::optional<double> mean_event_mass_lift(const nlohmann::json& record) {
  if (!record.is_object()) return std::nullopt;
  double sum = 0;
  int count = 0;
  for (const auto& [transformer, values] : record.items()) {
    if (const auto lift = number_at(values, "/lift"_json_pointer)) sum += *lift, ++count;
  }
  if (count == 0) return std::nullopt;
  return sum / count;
}

std::optional<double> RunMetrics::test_score(const std::string& name) const {
  return eval_score(test, name);
}

std::optional<std::vector<std::vector<double>>> RunMetrics::confusion() const {
  const auto p = "/classification/confusion"_json_pointer;
  if (!test.contains(p)) return std::nullopt;
  try {
    return test.at(p).get<std::vector<std::vector<double>>>();
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

std::optional<double> RunMetrics::latency_ms(int64_t batch) const {
  return latency_median_ms(latency, batch);
}

std::optional<double> RunMetrics::mean_lift(const std::string& network) const {
  if (!extra.contains("event_mass") || !extra["event_mass"].contains(network)) return std::nullopt;
  return mean_event_mass_lift(extra["event_mass"][network]);
}

std::vector<std::string> RunMetrics::kd_methods() const {
  std::vector<std::string> methods;
  if (!extra.contains("distill") || !extra["distill"].contains("terms")) return methods;
  for (const auto& term : extra["distill"]["terms"])
    if (term.contains("method") && term["method"].is_string())
      methods.push_back(term["method"].get<std::string>());
  return methods;
}

nlohmann::json RunMetrics::to_json() const {
  nlohmann::json j = extra;
  j["model"] = model;
  j["data"] = data;
  j["best_epoch"] = best_epoch;
  j["best_val_loss"] = best_val_loss;
  j["epochs"] = epochs;
  j["test"] = test;
  j["test"]["majority_rate"] = majority_rate;
  j["parameters"] = parameters;
  j["projection_parameters"] = projection_parameters;
  j["latency"] = latency;
  return j;
}

RunMetrics RunMetrics::from_json(const nlohmann::json& j, const std::string& source) {
  MMKD_CHECK(j.is_object(), source, ": expected a JSON object, got ", j.type_name());
  RunMetrics m;
  m.model = read_field<std::string>(j, "model", source);
  m.data = read_field<std::string>(j, "data", source);
  m.best_epoch = read_field<int64_t>(j, "best_epoch", source);
  m.best_val_loss = read_field<double>(j, "best_val_loss", source);
  m.epochs = read_field<int64_t>(j, "epochs", source);
  m.test = read_field<nlohmann::json>(j, "test", source);
  m.majority_rate = m.test.value("majority_rate", 0.0);
  m.test.erase("majority_rate");
  m.parameters = read_field<int64_t>(j, "parameters", source);
  m.projection_parameters = j.value("projection_parameters", int64_t{0});
  m.latency = j.value("latency", nlohmann::json::object());
  for (const auto& [key, value] : j.items()) {
    bool core = false;
    for (const char* c : kCoreKeys) core |= key == c;
    if (!core) m.extra[key] = value;
  }
  return m;
}

std::optional<RunMetrics> RunMetrics::read(const RunDir& dir) {
  const auto j = read_json_file(dir.metrics());
  if (!j) return std::nullopt;
  return from_json(*j, dir.metrics());
}

RunMetrics RunMetrics::load(const RunDir& dir) {
  auto m = read(dir);
  MMKD_CHECK(m, dir.metrics(), ": no such file (has the run in ", dir.path, " finished?)");
  return std::move(*m);
}

void RunMetrics::write(const RunDir& dir) const {
  write_text_atomic(dir.metrics(), to_json().dump(2) + "\n");
}

std::optional<nlohmann::json> read_event_mass_file(const RunDir& dir) {
  const auto j = read_json_file(dir.event_mass());
  if (!j) return std::nullopt;
  MMKD_CHECK(j->is_object() && j->contains("network"), dir.event_mass(),
             ": expected an object with key 'network'");
  return (*j)["network"];
}

void write_event_mass_file(const RunDir& dir, const nlohmann::json& record) {
  write_text_atomic(dir.event_mass(), nlohmann::json{{"network", record}}.dump(2) + "\n");
}

}  // namespace mmkd::train
