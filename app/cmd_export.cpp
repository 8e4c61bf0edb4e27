// `mmkd export`: a checkpoint as an ONNX model for ONNX Runtime (docs/onnx.md).
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "mmkd/core/error.h"
#include "mmkd/onnx/model_export.h"
#include "mmkd/train/checkpoint.h"
#include "mmkd/train/run_dir.h"

namespace mmkd::app {

namespace {

struct ExportArgs {
  std::string checkpoint, out, dynamic = "batch,time";
  onnx::ExportOptions options;
};

void run_export(ExportArgs& args) {
  onnx::parse_dynamic_axes(args.dynamic, args.options);
  // A run directory exports its best.pt, as eval and distill read it.
  const std::string path = train::checkpoint_of(args.checkpoint, "--checkpoint");
  train::CheckpointInfo info;
  auto model = train::load_model(path, torch::kCPU, &info);
  model->eval();
  onnx::write_onnx(args.out, *model, args.options, info.config_yaml, path);
  std::cout << "wrote " << args.out << ": " << model->config().describe() << ", inputs ";
  const auto names = onnx::onnx_input_names(model->config());
  for (size_t i = 0; i < names.size(); ++i) std::cout << (i ? ", " : "") << names[i];
  std::cout << " [" << (args.options.dynamic_batch ? "batch" : std::to_string(args.options.batch))
            << ", " << (args.options.dynamic_time ? "steps" : "trained steps")
            << ", features], opset " << args.options.opset << "\n";
}

}  // namespace

void register_export_commands(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  auto* command = app.add_subcommand(
      "export",
      "Write a teacher or student as an ONNX model (logits, and class probabilities) that ONNX\n"
      "Runtime runs; padding steps (all-zero feature vectors) are masked inside the graph.\n"
      "Examples:\n"
      "  mmkd export --checkpoint runs/student --out student.onnx\n"
      "  mmkd export --checkpoint runs/teacher/best.pt --out teacher.onnx --opset 18\n"
      "  mmkd export --checkpoint runs/student --out fixed.onnx --dynamic none --batch 1");
  command->add_option("--checkpoint", args->checkpoint, "run directory (its best.pt) or checkpoint")
      ->required();
  command->add_option("--out", args->out, "ONNX file to write")->required();
  command->add_option("--opset", args->options.opset, "ONNX opset, 17..21")->capture_default_str();
  command
      ->add_option("--dynamic", args->dynamic,
                   "axes left free: batch,time | batch | time | none (fixed to --batch and the "
                   "trained lengths)")
      ->capture_default_str();
  command->add_option("--batch", args->options.batch, "batch size of a model without a free batch")
      ->capture_default_str();
  command->callback([args] { run_export(*args); });
}

}  // namespace mmkd::app
