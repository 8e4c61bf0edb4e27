// `mmkd data synth` and `mmkd data inspect`.
#include "commands.h"

#include <torch/torch.h>

namespace mmkd::app {

void configure_threads(int threads) {
  torch::set_num_threads(threads > 0 ? threads
                                     : static_cast<int>(std::thread::hardware_concurrency()));
}

void register_data_commands(CLI::App& app) {
  auto* data = app.add_subcommand("data", "Create and inspect MOSEI-format data files");
  data->require_subcommand(1);
}

}  // namespace mmkd::app
