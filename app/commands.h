// Registration of the CLI's subcommands; each app/cmd_*.cpp file defines one group.
#pragma once

#include <CLI/CLI.hpp>

namespace mmkd::app {

void register_data_commands(CLI::App& app);
void register_model_commands(CLI::App& app);
void register_train_commands(CLI::App& app);
void register_report_commands(CLI::App& app);
void register_bench_commands(CLI::App& app);
void register_latency_commands(CLI::App& app);
void register_study_commands(CLI::App& app);
void register_import_commands(CLI::App& app);
void register_export_commands(CLI::App& app);

}  // namespace mmkd::app
