#include "mmkd/train/run_dir.h"

#include <filesystem>

#include "mmkd/core/error.h"

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

std::string checkpoint_of(const std::string& run_or_checkpoint, const std::string& what) {
  MMKD_CHECK(!run_or_checkpoint.empty(), what, ": expected a run directory or a checkpoint file");
  if (std::filesystem::is_directory(run_or_checkpoint)) {
    const std::string best = RunDir{run_or_checkpoint}.best();
    MMKD_CHECK(std::filesystem::exists(best), what, " ", run_or_checkpoint,
               ": the run has no best.pt yet (has its training finished an epoch?)");
    return best;
  }
  MMKD_CHECK(std::filesystem::exists(run_or_checkpoint), what, " ", run_or_checkpoint,
             ": no such run directory or checkpoint file");
  return run_or_checkpoint;
}

RunDir study_run_dir(const std::string& root, const std::string& name) {
  return {root + "/runs/" + name};
}

}  // namespace mmkd::train
