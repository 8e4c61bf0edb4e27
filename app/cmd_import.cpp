// `mmkd import mult`: a teacher trained by MulT's own code, as an mmkd checkpoint or run.
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "mmkd/core/atomic_file.h"
#include "mmkd/core/error.h"
#include "mmkd/data/mosei_io.h"
#include "mmkd/data/torch_state_dict.h"
#include "mmkd/models/mult_import.h"
#include "mmkd/train/checkpoint.h"
#include "mmkd/train/evaluate.h"
#include "mmkd/train/run.h"
#include "mmkd/train/run_config.h"
#include "mmkd/train/run_dir.h"

namespace mmkd::app {

namespace fs = std::filesystem;

namespace {

struct ImportArgs {
  std::string state_dict, out, config, shape;
  std::vector<std::string> overrides;
  int64_t heads = 0;
};

bool is_checkpoint_file(const std::string& out) { return fs::path(out).extension() == ".pt"; }

/// A run directory the import may write: new, or empty. An existing run is never overwritten.
void check_new_run_dir(const train::RunDir& dir) {
  if (!fs::exists(dir.path)) return;
  MMKD_CHECK(fs::is_directory(dir.path), "--out ", dir.path, ": exists and is not a directory");
  MMKD_CHECK(fs::is_empty(dir.path), "--out ", dir.path,
             ": the directory is not empty (an import writes a new run; choose another path)");
}

/// The validation loss and test metrics of the imported network on the config's data, written as
/// a finished run (config.yaml, best.pt, log-free metrics.json) that eval, distill and studies
/// read.
void write_run(const train::RunConfig& config, const train::RunDir& dir,
               const data::MoseiData& data, models::MultimodalNet& model,
               const train::CheckpointInfo& info, const std::string& source) {
  fs::create_directories(dir.path);
  write_text_atomic(dir.config(), YAML::Dump(config.resolved()) + "\n");
  train::save_checkpoint(dir.best(), model, info);
  train::EvalOptions options;
  options.batch_size = config.train.eval_batch_size;
  options.context = dir.best() + " on the validation split";
  const auto valid = train::evaluate(model, data.split("valid"), options);
  train::FitResult fit;
  fit.best_val_loss = valid.loss;
  train::finish_run(config, dir, data, fit,
                    {{"imported", {{"from", "mult"}, {"state_dict", source}}}});
}

/// The run config: the given file, or (checkpoint output only) mmkd's defaults in the MulT mode.
train::RunConfig import_config(const ImportArgs& args, bool run) {
  if (!args.config.empty()) return train::load_run_config(args.config, args.overrides);
  MMKD_CHECK(!run, "--out ", args.out,
             ": a run directory is evaluated on data, so give --config (its data section, e.g. "
             "configs/teacher_mult.yaml --set data.path=mosei_senti_data_noalign.pkl), or write "
             "a checkpoint file (--out FILE.pt)");
  MMKD_CHECK(args.overrides.empty(), "--set needs --config");
  return train::parse_run_config(
      YAML::Load("model: {role: teacher, compat: mult, mask_padding: false}"),
      "mmkd import mult (no --config)");
}

void run_import(const ImportArgs& args) {
  MMKD_CHECK(args.heads > 0,
             "mmkd import mult: give --heads N (MulT's --num_heads; a state dict "
             "does not record it)");
  const bool run = !is_checkpoint_file(args.out);
  if (run) check_new_run_dir(train::RunDir{args.out});
  train::RunConfig config = import_config(args, run);
  std::cerr << "reading " << args.state_dict << "\n";
  const data::StateDict state_dict = data::read_torch_state_dict(args.state_dict);

  models::MultImportOptions options;
  options.heads = args.heads;
  options.base = config.model;
  std::optional<data::MoseiData> data;
  if (!args.shape.empty()) {
    options.shape = models::InputShape::parse(args.shape);
  } else if (!args.config.empty()) {
    std::cerr << "data: " << config.data.describe() << "\n";
    data = data::load_data(config.data);
    options.shape = train::input_shape_of(*data);
  }
  const models::MultImport imported = models::import_mult(state_dict, options, args.state_dict);
  const models::InputShape& shape = imported.shape;
  // options.shape holds the data's own shape when data was loaded.
  MMKD_CHECK(!data || options.shape.dim == shape.dim, args.state_dict,
             ": its projections read features of sizes ", shape.describe(), ", but the data (",
             config.data.describe(), ") has ", options.shape.describe());
  config.model = imported.config;
  models::MultimodalNet model = imported.model;
  std::cerr << "imported " << imported.config.describe() << ", " << model->parameter_count()
            << " parameters, inputs " << shape.describe() << "\n";
  if (!imported.ignored.empty()) {
    std::cerr << "not needed by mmkd (" << imported.ignored.size() << " tensors):";
    for (const auto& key : imported.ignored) std::cerr << " " << key;
    std::cerr << "\n";
  }
  train::CheckpointInfo info;
  info.config_yaml = YAML::Dump(config.resolved());
  info.shape = shape;
  if (!run) {
    train::save_checkpoint(args.out, model, info);
    std::cout << "wrote " << args.out << "\n";
    return;
  }
  MMKD_CHECK(data.has_value(), "--out ", args.out,
             ": a run directory is evaluated on the config's data, so --shape cannot be used; "
             "write a checkpoint file (--out FILE.pt) instead");
  const train::RunDir dir{args.out};
  write_run(config, dir, *data, model, info, args.state_dict);
  std::cout << "wrote run " << dir.path << " (" << dir.best() << ", " << dir.metrics() << ")\n";
}

}  // namespace

void register_import_commands(CLI::App& app) {
  auto* import = app.add_subcommand("import", "Bring networks trained elsewhere into mmkd");
  import->require_subcommand(1);
  auto args = std::make_shared<ImportArgs>();
  auto* mult = import->add_subcommand(
      "mult",
      "A MulT state dict (torch.save(model.state_dict(), F)) as an mmkd teacher in the MulT mode "
      "(model.compat: mult).\n"
      "Examples:\n"
      "  mmkd import mult --state-dict mult.pt --heads 5 --config configs/teacher_mult.yaml \\\n"
      "      --set data.path=mosei_senti_data_noalign.pkl --out runs/mult_teacher\n"
      "  mmkd import mult --state-dict mult.pt --heads 5 --out mult_teacher.pt   # MOSEI lengths");
  mult->add_option("--state-dict", args->state_dict, "MulT state dict written by torch.save")
      ->required();
  mult->add_option("--out", args->out,
                   "run directory (written as a finished run, evaluated on the config's data) or "
                   "checkpoint file ending in .pt")
      ->required();
  mult->add_option("--heads", args->heads, "attention heads (MulT's --num_heads)")->required();
  mult->add_option("--config", args->config,
                   "run config: its data (needed for a run directory) and the dropouts for "
                   "further training; default: mmkd's defaults in the MulT mode")
      ->check(CLI::ExistingFile);
  mult->add_option("--set", args->overrides, "override a config key: section.key=value");
  mult->add_option("--shape", args->shape,
                   "input lengths tiny | mosei | Tv,Ta,Tl instead of loading the config's data "
                   "(only with --out FILE.pt; default without --config: mosei)");
  mult->callback([args] { run_import(*args); });
}

}  // namespace mmkd::app
