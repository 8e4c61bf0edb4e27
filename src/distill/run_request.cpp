#include "mmkd/distill/run_request.h"

#include <filesystem>

#include "mmkd/core/error.h"
#include "mmkd/distill/distill_run.h"
#include "mmkd/train/run.h"

namespace mmkd::distill {

namespace fs = std::filesystem;

namespace {

std::string default_run_dir(const train::RunConfig& config) {
  return "runs/" + fs::path(config.source).stem().string() + "-seed" +
         std::to_string(config.train.seed);
}

/// The request's own settings become overrides, so the run's config.yaml records them.
std::vector<std::string> all_overrides(const RunRequest& request) {
  std::vector<std::string> overrides = request.overrides;
  if (request.threads >= 0) overrides.push_back("train.threads=" + std::to_string(request.threads));
  if (!request.device.empty()) overrides.push_back("train.device=" + request.device);
  if (!request.teacher.empty()) overrides.push_back("distill.teacher=" + request.teacher);
  return overrides;
}

}  // namespace

std::string command_line(const RunRequest& request) {
  std::string line = request.distill ? "mmkd distill" : "mmkd train";
  const auto add = [&](const std::string& option, const std::string& value) {
    line += " " + option + " " + value;
  };
  if (request.resume) {
    add("--resume", request.run_dir);
  } else {
    add("--config", request.config);
    if (!request.run_dir.empty()) add("--run", request.run_dir);
    for (const auto& o : request.overrides) add("--set", o);
    if (!request.teacher.empty()) add("--teacher", request.teacher);
  }
  if (request.threads >= 0) add("--threads", std::to_string(request.threads));
  if (!request.device.empty()) add("--device", request.device);
  return line;
}

RunOutcome execute_run(RunRequest request) {
  const std::string command = request.distill ? "mmkd distill" : "mmkd train";
  std::string config_file = request.config;
  if (request.resume) {
    MMKD_CHECK(request.config.empty(), "use either --config (new run) or --resume RUN, not both");
    config_file = train::RunDir{request.run_dir}.config();
    MMKD_CHECK(fs::exists(config_file), "--resume ", request.run_dir,
               ": no config.yaml there (is it a run directory?)");
  }
  MMKD_CHECK(!config_file.empty(), command, ": --config FILE (or --resume RUN) is required");
  const train::RunConfig config = train::load_run_config(config_file, all_overrides(request));
  const train::RunDir dir{request.run_dir.empty() ? default_run_dir(config) : request.run_dir};
  MMKD_CHECK(request.resume || !fs::exists(dir.last()), "run directory ", dir.path,
             " already holds a run; continue it with --resume ", dir.path,
             " or choose another --run");
  train::RunMetrics metrics = request.distill ? run_distillation(config, dir, request.resume)
                                              : train::run_training(config, dir, request.resume);
  return {dir, std::move(metrics)};
}

}  // namespace mmkd::distill
