// `mmkd summarize`: a markdown table of finished runs, mean ± std over seeds.
#include <iostream>

#include "commands.h"
#include "mmkd/report/run_summary.h"

namespace mmkd::app {

void register_report_commands(CLI::App& app) {
  auto dirs = std::make_shared<std::vector<std::string>>();
  auto* summarize = app.add_subcommand(
      "summarize",
      "Print a markdown table of finished runs (their metrics.json): test acc7, F1, parameters,\n"
      "latency, event-mass lift of teacher and student maps. Runs named <name>-seed<k> are\n"
      "grouped as mean ± std over seeds.\n"
      "Example:\n"
      "  mmkd summarize runs/teacher-seed0 runs/teacher-seed1 runs/student-seed0 "
      "runs/student-seed1");
  summarize->add_option("runs", *dirs, "run directories")->required();
  summarize->callback([dirs] { std::cout << report::summary_table(report::read_runs(*dirs)); });
}

}  // namespace mmkd::app
