// `mmkd model summary`: parameter table, sequence lengths and the paper's figures for a model
// config.
#include <torch/torch.h>

#include <iomanip>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "mmkd/models/multimodal_net.h"
#include "mmkd/models/parameter_count.h"

namespace mmkd::app {

namespace {

std::string with_commas(int64_t n) {
  auto digits = std::to_string(n < 0 ? -n : n);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(i, ",");
  return (n < 0 ? "-" : "") + digits;
}

std::string millions(int64_t n, int decimals = 3) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(decimals) << double(n) / 1e6 << "M";
  return out.str();
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// The paper's reported size for this model, with a note on how ours relates to it.
void print_paper_comparison(const models::MultimodalNetImpl& net) {
  const auto& config = net.config();
  const int64_t total = net.parameter_count();
  const int64_t without = total - net.projection_parameter_count();
  std::cout << "\nPaper comparison\n";
  if (config.role == models::Role::kTeacher &&
      config.teacher_arch == models::TeacherArch::kComplete) {
    std::cout << "  paper (Complete Teacher Network): 1.802M   ours: " << millions(total) << " ("
              << with_commas(total) << ")\n";
    std::cout << "  No equal-width MulT configuration gives 1.802M. With this kernel ("
              << config.conv_kernel << ") and layers (" << config.layers
              << "), widths divisible by " << config.heads << " heads give:\n";
    for (int64_t d = config.heads; d <= 64; d += config.heads) {
      auto probe = config;
      probe.d_model = d;
      const int64_t count = models::teacher_parameter_count(probe, net.input_shape());
      if (count > 1.2e6 && count < 2.6e6) {
        std::cout << "    d=" << d << ": " << millions(count) << "\n";
      }
    }
    std::cout << "  MulT with kernel 1, d=40, 4 layers: 1.542M (936d^2+1111d+7).\n";
  } else if (config.role == models::Role::kStudent &&
             config.student_arch == models::StudentArch::kLanguageAudio) {
    std::cout << "  paper (student 5, Language+Audio): 0.675M   ours without proxies: "
              << millions(without, 4) << " (" << with_commas(without) << "), with proxies "
              << millions(total) << " (" << with_commas(total) << ")\n";
  } else {
    std::cout << "  the paper reports no parameter count for this configuration\n";
  }
}

void model_summary(const std::string& config_file, const std::string& shape_text_arg) {
  const auto config = models::load_model_config(config_file);
  const auto shape = models::InputShape::parse(shape_text_arg);
  auto net = models::build_model(config, shape);

  std::cout << "Model: " << config.describe() << "\n";
  std::cout << "Config: " << config_file << "\n";
  std::cout << "Input shape: " << shape.describe() << "\n\nParameters\n";
  const auto rows = net->parameter_table();
  size_t width = 10;
  for (const auto& row : rows) width = std::max(width, row.module.size());
  for (const auto& row : rows) {
    std::cout << "  " << std::left << std::setw(static_cast<int>(width)) << row.module << "  "
              << std::right << std::setw(12) << with_commas(row.parameters) << "\n";
  }
  const int64_t total = net->parameter_count();
  const int64_t projections = net->projection_parameter_count();
  std::cout << "  " << std::left << std::setw(static_cast<int>(width)) << "total"
            << "  " << std::right << std::setw(12) << with_commas(total) << "  (" << millions(total)
            << ")\n";
  std::cout << "  " << std::left << std::setw(static_cast<int>(width))
            << (config.role == models::Role::kStudent ? "  proxies" : "  projections") << "  "
            << std::right << std::setw(12) << with_commas(projections) << "\n";
  std::cout << "  " << std::left << std::setw(static_cast<int>(width)) << "  without them"
            << "  " << std::right << std::setw(12) << with_commas(total - projections) << "\n";

  std::cout << "\nSequences (batch 1)\n";
  const auto sequences = net->geometry().sequence_table();
  width = 10;
  for (const auto& row : sequences) width = std::max(width, row.tensor.size());
  for (const auto& row : sequences) {
    std::cout << "  " << std::left << std::setw(static_cast<int>(width)) << row.tensor << "  "
              << shape_text(row.shape) << "\n";
  }
  if (config.role == models::Role::kStudent) {
    std::cout << "\nProxies (Conv1D over the video, lengths computed from kernel/stride/padding)\n";
    for (const auto& p : net->geometry().sequences) {
      std::cout << "  " << p.label << ": kernel " << p.conv.kernel << ", stride " << p.conv.stride
                << ", padding " << p.conv.padding << "  " << p.in_length << " -> " << p.length
                << " steps\n";
    }
  }
  print_paper_comparison(*net);
}

}  // namespace

void register_model_commands(CLI::App& app) {
  auto* model = app.add_subcommand("model", "Inspect teacher and student models");
  model->require_subcommand(1);
  auto* summary = model->add_subcommand(
      "summary", "Per-module parameters, sequence lengths and the paper's figures for a config");
  struct Options {
    std::string config;
    std::string shape = "mosei";
  };
  auto options = std::make_shared<Options>();
  summary->add_option("--config", options->config, "YAML file with a model: section")
      ->required()
      ->check(CLI::ExistingFile);
  summary
      ->add_option("--shape", options->shape,
                   "Input lengths: tiny (16,16,8), mosei (500,500,50) or Tv,Ta,Tl")
      ->capture_default_str();
  summary->callback([options] { model_summary(options->config, options->shape); });
}

}  // namespace mmkd::app
