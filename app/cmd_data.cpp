// `mmkd data synth` and `mmkd data inspect`.
#include <sys/resource.h>

#include <cstdio>
#include <iomanip>
#include <iostream>
#include <map>
#include <thread>

#include "commands.h"
#include "mmkd/core/error.h"
#include "mmkd/data/batch_loader.h"
#include "mmkd/data/mosei_io.h"
#include "mmkd/data/synthetic.h"
#include "mmkd/train/labels.h"

namespace mmkd::app {

namespace {

double peak_rss_gib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);  // ru_maxrss is in KiB
}

std::string shape_string(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? "," : "") + std::to_string(t.size(d));
  return s + "]";
}

struct SynthArgs {
  std::string preset = "small";
  uint64_t seed = 0;
  std::string out;
  std::vector<std::string> overrides;
  bool list = false;
};

void run_synth(const SynthArgs& args) {
  data::SynthOptions options = data::synth_preset(args.preset);
  options.seed = args.seed;
  for (const auto& entry : args.overrides) {
    const auto eq = entry.find('=');
    MMKD_CHECK(eq != std::string::npos && eq > 0, "--set '", entry, "': expected key=value");
    data::apply_synth_override(options, entry.substr(0, eq), entry.substr(eq + 1));
  }
  if (args.list) {
    for (const auto& [name, text] : data::describe_synth_options(options))
      std::cout << "  " << std::left << std::setw(22) << name << text << "\n";
    return;
  }
  MMKD_CHECK(!args.out.empty(), "mmkd data synth: --out FILE is required");
  std::cerr << "generating synthetic data (preset " << args.preset << ", seed " << args.seed
            << ")...\n";
  const data::MoseiData generated = data::generate_synthetic(options);
  std::cerr << "writing " << args.out << "...\n";
  data::save_mosei(generated, args.out);
  for (const auto& [name, split] : generated.splits)
    std::cout << name << ": " << split.size() << " samples\n";
  std::cout << "wrote " << args.out << "\n";
}

void print_label_histogram(const data::Split& split) {
  const torch::Tensor classes = train::sentiment_to_class(split.labels);
  const torch::Tensor counts = torch::bincount(classes, {}, 7);
  std::cout << "    labels (7 classes, clip to [-3,3], round half to even):";
  for (int64_t c = 0; c < 7; ++c) {
    const double share = 100.0 * counts[c].item<double>() / std::max<int64_t>(1, split.size());
    std::cout << "  " << (c - 3 > 0 ? "+" : "") << c - 3 << ":" << counts[c].item<int64_t>() << " ("
              << std::fixed << std::setprecision(1) << share << "%)";
  }
  std::cout << "\n";
}

void print_modality(const data::MoseiData& file, const std::string& split_name,
                    const data::Split& split, data::Modality m) {
  const torch::Tensor& x = split.feature(m);
  const torch::Tensor pad = data::padding_mask(x);
  const torch::Tensor true_len = (~pad).sum(1).to(torch::kDouble);
  const std::string key = data::modality_key(m);
  const auto dtype_it = file.source_dtypes.find(split_name + "/" + key);
  const auto cleaned_it = file.cleaned.replaced.find(split_name);
  const int64_t cleaned =
      cleaned_it == file.cleaned.replaced.end() ? 0 : cleaned_it->second[modality_index(m)];
  std::cout << "    " << std::left << std::setw(7) << key << std::setw(16) << shape_string(x)
            << std::setw(9) << (dtype_it == file.source_dtypes.end() ? "float32" : dtype_it->second)
            << "padded steps " << std::fixed << std::setprecision(1)
            << 100.0 * pad.to(torch::kDouble).mean().item<double>() << "%, true length mean "
            << true_len.mean().item<double>() << " min " << true_len.min().item<double>() << " max "
            << true_len.max().item<double>() << ", non-finite replaced " << cleaned;
  if (split.event(m).defined())
    std::cout << ", event steps " << 100.0 * split.event(m).to(torch::kDouble).mean().item<double>()
              << "%";
  std::cout << "\n";
}

void run_inspect(const std::string& path) {
  const data::MoseiData file = data::load_mosei(path);
  std::cout << path << " (layout " << file.layout << ")\n";
  double array_gib = 0;
  for (const auto& name : data::kSplitNames) {
    const data::Split& split = file.split(name);
    std::cout << "  " << name << ": " << split.size() << " samples"
              << (split.ids.empty() ? "" : ", ids") << (split.has_events() ? ", events" : "")
              << "\n";
    for (data::Modality m : data::kModalities) {
      print_modality(file, name, split, m);
      array_gib += split.feature(m).numel() * 4.0 / (1024.0 * 1024.0 * 1024.0);
    }
    print_label_histogram(split);
  }
  std::cout << "  non-finite values replaced by 0: " << file.cleaned.total() << "\n";
  std::cout << std::setprecision(2) << "  feature arrays " << array_gib
            << " GiB; peak resident memory " << peak_rss_gib() << " GiB\n";
}

}  // namespace

void register_data_commands(CLI::App& app) {
  auto* data = app.add_subcommand("data", "Create and inspect MOSEI-format data files");
  data->require_subcommand(1);

  auto synth_args = std::make_shared<SynthArgs>();
  auto* synth =
      data->add_subcommand("synth",
                           "Write built-in synthetic MOSEI-like data as a MulT-format pickle.\n"
                           "Examples:\n"
                           "  mmkd data synth --preset tiny --seed 1 --out tiny.pkl\n"
                           "  mmkd data synth --preset small --set snr_video=0.5 --out small.pkl\n"
                           "  mmkd data synth --preset small --list-options");
  synth->add_option("--preset", synth_args->preset, "tiny | small | medium | mosei")
      ->capture_default_str();
  synth->add_option("--seed", synth_args->seed, "random seed")
      ->check(CLI::NonNegativeNumber)  // an unsigned option would wrap -1 to 2^64-1
      ->capture_default_str();
  synth->add_option("--out", synth_args->out, "output .pkl file (written atomically)");
  synth->add_option("--set", synth_args->overrides,
                    "override a generator parameter, key=value (see --list-options)");
  synth->add_flag("--list-options", synth_args->list,
                  "print every generator parameter with its value and meaning");
  synth->callback([synth_args] { run_synth(*synth_args); });

  auto path = std::make_shared<std::string>();
  auto* inspect = data->add_subcommand(
      "inspect",
      "Summarise a MOSEI-format pickle: splits, shapes, dtypes, 7-class label histogram,\n"
      "cleaned values, padding statistics.\n"
      "Example:\n"
      "  mmkd data inspect mosei_senti_data_noalign.pkl");
  inspect->add_option("file", *path, "MulT or MMSA pickle")->required();
  inspect->callback([path] { run_inspect(*path); });
}

}  // namespace mmkd::app
