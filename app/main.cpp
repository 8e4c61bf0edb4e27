// mmkd: the command line over the library. Each subcommand group lives in its own cmd_*.cpp.
#include <iostream>

#include "commands.h"
#include "mmkd/core/allocator.h"
#include "mmkd/core/error.h"
#include "mmkd/core/version.h"

int main(int argc, char** argv) {
  mmkd::tune_allocator();  // before any tensor exists (src/core/allocator.cpp)
  CLI::App app{
      "mmkd — multimodal-to-unimodal knowledge distillation in transformers.\n"
      "A MulT-style teacher over video, audio and text is distilled into a video-only student.\n\n"
      "Examples:\n"
      "  mmkd data synth --preset small --seed 0 --out small.pkl\n"
      "  mmkd data inspect small.pkl\n"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("mmkd ") + mmkd::kVersion);
  mmkd::app::register_data_commands(app);
  mmkd::app::register_model_commands(app);
  mmkd::app::register_train_commands(app);
  mmkd::app::register_report_commands(app);
  mmkd::app::register_bench_commands(app);
  mmkd::app::register_latency_commands(app);
  mmkd::app::register_study_commands(app);
  mmkd::app::register_import_commands(app);
  mmkd::app::register_export_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const mmkd::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
