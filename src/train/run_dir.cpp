#include "mmkd/train/run_dir.h"

#include <filesystem>

namespace mmkd::train {

std::string RunDir::config() const { return path + "/config.yaml"; }
std::string RunDir::log() const { return path + "/log.csv"; }
std::string RunDir::metrics() const { return path + "/metrics.json"; }
std::string RunDir::best() const { return path + "/best.pt"; }
std::string RunDir::last() const { return path + "/last.pt"; }
std::string RunDir::latency() const { return path + "/latency.json"; }
std::string RunDir::event_mass() const { return path + "/event-mass.json"; }
std::string RunDir::missing_modality(const std::string& drop) const {
  return path + "/missing-" + drop + ".json";
}

bool RunDir::finished() const { return std::filesystem::exists(metrics()); }
bool RunDir::resumable() const { return !finished() && std::filesystem::exists(last()); }

RunDir study_run_dir(const std::string& root, const std::string& name) {
  return {root + "/runs/" + name};
}

}  // namespace mmkd::train
