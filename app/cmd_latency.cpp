// `mmkd latency`: the inference latency of finished runs, measured again with the current build
// on an idle machine (a study's runs measure theirs when they finish, often beside another run).
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "mmkd/core/atomic_file.h"
#include "mmkd/core/error.h"
#include "mmkd/core/json_file.h"
#include "mmkd/study/study_table.h"
#include "mmkd/train/bench.h"
#include "mmkd/train/checkpoint.h"
#include "mmkd/train/latency.h"
#include "mmkd/train/run.h"
#include "mmkd/train/trainer.h"

namespace mmkd::app {

namespace {

struct LatencyArgs {
  std::vector<std::string> runs;
  int threads = 1;
  std::string device = "cpu";
  bool write = false;
};

std::string median_ms(const nlohmann::json& record, const char* batch) {
  const nlohmann::json::json_pointer p("/" + std::string(batch) + "/median_ms");
  if (!record.contains(p) || !record.at(p).is_number()) return "–";
  std::ostringstream out;
  out << std::fixed << std::setprecision(2) << record.at(p).get<double>();
  return out.str();
}

nlohmann::json metrics_latency(const std::string& run) {
  const auto metrics = read_json_file(run + "/metrics.json");
  if (!metrics || !metrics->contains("latency")) return nlohmann::json::object();
  return (*metrics)["latency"];
}

void run_latency_command(const LatencyArgs& args) {
  train::set_threads(args.threads);
  const torch::Device device = train::parse_device(args.device);
  // Check every run first, so a typo in the last one does not surface after minutes of timing.
  for (const auto& run : args.runs) {
    MMKD_CHECK(std::filesystem::exists(run + "/best.pt"), "mmkd latency: run '", run,
               "' has no best.pt (expected a finished run directory)");
  }
  std::cerr << "latency: " << args.runs.size() << " run(s), threads " << args.threads << ", device "
            << args.device << ", load " << train::load_average() << "\n";
  for (const auto& run : args.runs) {
    models::MultimodalNet model = train::load_model(run + "/best.pt", device);
    nlohmann::json record = train::latency_record(model, device);
    const nlohmann::json before = metrics_latency(run);
    std::cout << run << ": batch 1 " << median_ms(record, "batch_1") << " ms, batch 64 "
              << median_ms(record, "batch_64")
              << " ms (when trained: " << median_ms(before, "batch_1") << " / "
              << median_ms(before, "batch_64") << " ms)\n";
    if (args.write) {
      record["device"] = args.device;
      record["load_average"] = train::load_average();
      write_text_atomic(run + "/" + study::kLatencyFile, record.dump(2) + "\n");
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
  cmd->add_option("--threads", args->threads, "LibTorch intra-op threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--device", args->device, "cpu | cuda | cuda:N")->capture_default_str();
  cmd->add_flag("--write", args->write, "Write RUN/latency.json (atomically)");
  cmd->callback([args] { run_latency_command(*args); });
}

}  // namespace mmkd::app
