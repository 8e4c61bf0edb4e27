// `mmkd latency`: the inference latency of finished runs, measured again with the current build
// on an idle machine (a study's runs measure theirs when they finish, often beside another run).
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "mmkd/core/atomic_file.h"
#include "mmkd/core/error.h"
#include "mmkd/train/bench.h"
#include "mmkd/train/checkpoint.h"
#include "mmkd/train/latency.h"
#include "mmkd/train/run.h"
#include "mmkd/train/run_metrics.h"

namespace mmkd::app {

namespace {

struct LatencyArgs {
  std::vector<std::string> runs;
  int threads = 1;
  std::string device = "cpu";
  bool write = false;
};

std::string median_ms(const nlohmann::json& record, int64_t batch) {
  const auto ms = train::latency_median_ms(record, batch);
  if (!ms) return "–";
  std::ostringstream out;
  out << std::fixed << std::setprecision(2) << *ms;
  return out.str();
}

/// The latency measured when the run finished (empty when it has not).
nlohmann::json latency_when_trained(const train::RunDir& run) {
  const auto metrics = train::RunMetrics::read(run);
  return metrics ? metrics->latency : nlohmann::json::object();
}

void run_latency_command(const LatencyArgs& args) {
  train::set_threads(args.threads);
  const torch::Device device = train::parse_device(args.device);
  // Check every run first, so a typo in the last one does not surface after minutes of timing.
  for (const auto& run : args.runs) {
    MMKD_CHECK(std::filesystem::exists(train::RunDir{run}.best()), "mmkd latency: run '", run,
               "' has no best.pt (expected a finished run directory)");
  }
  std::cerr << "latency: " << args.runs.size() << " run(s), threads " << args.threads << ", device "
            << args.device << ", load " << train::load_average() << "\n";
  for (const auto& path : args.runs) {
    const train::RunDir run{path};
    models::MultimodalNet model = train::load_model(run.best(), device);
    nlohmann::json record = train::latency_record(model, device);
    const nlohmann::json before = latency_when_trained(run);
    std::cout << path << ": batch 1 " << median_ms(record, 1) << " ms, batch 64 "
              << median_ms(record, 64) << " ms (when trained: " << median_ms(before, 1) << " / "
              << median_ms(before, 64) << " ms)\n";
    if (args.write) {
      record["device"] = args.device;
      record["load_average"] = train::load_average();
      write_text_atomic(run.latency(), record.dump(2) + "\n");
    }
  }
}

}  // namespace

void register_latency_commands(CLI::App& app) {
  auto args = std::make_shared<LatencyArgs>();
  auto* cmd = app.add_subcommand(
      "latency",
      "Measure finished runs' inference latency again (batch 1 and 64, median ms) with this\n"
      "build; --write keeps it as RUN/latency.json, which study tables prefer to the figure\n"
      "the run measured when it finished. Example:\n"
      "  mmkd latency runs/table1/runs/* --threads 1 --write && "
      "mmkd study merge --config configs/table1.yaml --out results runs/table1");
  cmd->add_option("runs", args->runs, "Run directories (each with best.pt)")->required();
  cmd->add_option("--threads", args->threads, "LibTorch intra-op threads (0 = one per free core)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--device", args->device, "cpu | cuda | cuda:N")->capture_default_str();
  cmd->add_flag("--write", args->write, "Write RUN/latency.json (atomically)");
  cmd->callback([args] { run_latency_command(*args); });
}

}  // namespace mmkd::app
