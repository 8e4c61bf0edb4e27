// Registration of the CLI's subcommands; each app/cmd_*.cpp file defines one group.
#pragma once

#include <CLI/CLI.hpp>

namespace mmkd::app {

void register_data_commands(CLI::App& app);

/// Sets LibTorch's intra-op threads (it defaults to 1 on these machines); 0 = all cores.
void configure_threads(int threads);

}  // namespace mmkd::app
