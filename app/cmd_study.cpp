// `mmkd study`, `mmkd study merge`, `mmkd attention` and `mmkd demo`.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "commands.h"
#include "mmkd/core/error.h"
#include "mmkd/report/attention_figure.h"
#include "mmkd/study/slurm_shard.h"
#include "mmkd/study/study_run.h"

namespace mmkd::app {

namespace fs = std::filesystem;

namespace {

struct StudyArgs {
  std::string config;
  std::string out;
  std::string report;
  std::string shard;  ///< empty: the Slurm array task's share, else the whole study
  std::vector<std::string> study_overrides;  // into the study file
  std::vector<std::string> run_overrides;    // into every run
  int64_t seeds = 0;
  int64_t epochs = 0;
  int64_t jobs = 1;
  int64_t threads = 0;
  std::string device;
  bool extended = false;
  bool dry_run = false;
  std::vector<std::string> merge_dirs;
  bool no_measure = false;
  std::vector<std::string> only;
};

study::StudyConfig load(const StudyArgs& args) {
  MMKD_CHECK(!args.config.empty(), "--config STUDY.yaml is required");
  std::vector<std::string> overrides = args.study_overrides;
  if (args.seeds > 0) overrides.push_back("study.seeds=" + std::to_string(args.seeds));
  if (args.extended) overrides.push_back("study.extended=true");
  study::StudyConfig config = study::load_study_config(args.config, overrides);
  if (args.epochs > 0) config.overrides.push_back("train.epochs=" + std::to_string(args.epochs));
  config.overrides.insert(config.overrides.end(), args.run_overrides.begin(),
                          args.run_overrides.end());
  return config;
}

std::string default_out(const StudyArgs& args) {
  return args.out.empty() ? "runs/" + fs::path(args.config).stem().string() : args.out;
}

void run_study_command(const StudyArgs& args) {
  const study::StudyConfig config = load(args);
  study::StudyOptions options;
  options.out = default_out(args);
  options.report_dir = args.report;
  std::string shard = args.shard;
  if (shard.empty()) {
    shard = study::slurm_array_shard().value_or("1/1");
    if (shard != "1/1") std::cerr << "study: shard " << shard << " from the Slurm job array\n";
  }
  options.shard = study::parse_shard(shard);
  options.dry_run = args.dry_run;
  options.only = args.only;
  options.runner.jobs = args.jobs;
  options.runner.threads = args.threads;
  options.runner.device = args.device;
  const int64_t failed = study::run_study(config, options);
  if (!args.dry_run) {
    std::ifstream table((args.report.empty() ? options.out : args.report) + "/table1.md");
    std::cout << "\n" << table.rdbuf();
  }
  MMKD_CHECK(failed == 0, failed,
             " run(s) of the study did not finish (listed above); run the "
             "same command again to retry them");
}

void add_study_options(CLI::App* command, StudyArgs& args) {
  command->add_option("--config", args.config, "study file (YAML)");
  command->add_option("--out", args.out, "study directory (default runs/<study file name>)");
  command->add_option("--seeds", args.seeds, "seeds 0..N-1 (overrides study.seeds)")
      ->check(CLI::PositiveNumber);
  command->add_option("--epochs", args.epochs, "train.epochs of every run")
      ->check(CLI::PositiveNumber);
  command->add_option("--set", args.study_overrides, "override a study-file key, study.key=value");
  command->add_option("--run-set", args.run_overrides,
                      "override a key of every run, e.g. train.batch_size=32");
  command->add_flag("--extended", args.extended,
                    "add the full grid: every configuration x every method");
}

}  // namespace

void register_study_commands(CLI::App& app) {
  auto args = std::make_shared<StudyArgs>();
  auto* study = app.add_subcommand(
      "study",
      "Run a study (the paper's Table 1): teachers once per seed, then their students; finished\n"
      "runs are skipped and killed runs resumed, so the same command continues a study.\n"
      "Writes table1.md, table1.csv, report.html and figures into the study directory.\n"
      "Examples:\n"
      "  mmkd study --config configs/table1.yaml --seeds 3 --out runs/table1\n"
      "  mmkd study --config configs/table1.yaml --shard 1/2 --out /shared/table1   # machine 1\n"
      "  mmkd study merge --config configs/table1.yaml --out results shardA shardB");
  add_study_options(study, *args);
  study->add_option("--report", args->report, "write the report here (default: --out)");
  study->add_option("--shard", args->shard,
                    "run only shard i of n (units of a teacher and its "
                    "students), e.g. 1/2; default: the Slurm array task's "
                    "(SLURM_ARRAY_TASK_ID/COUNT), else the whole study");
  study->add_option("--jobs", args->jobs, "runs at a time (each gets cores/jobs threads)")
      ->check(CLI::PositiveNumber);
  study->add_option("--threads", args->threads, "intra-op threads per run (0 = cores/jobs)")
      ->check(CLI::NonNegativeNumber);
  study->add_option("--device", args->device, "cpu | cuda | cuda:N for every run");
  study->add_flag("--dry-run", args->dry_run, "print what would run, run nothing");
  study
      ->add_option("--only", args->only,
                   "run only these rows (comma-separated) and the teachers they learn from; "
                   "the report still covers the whole study")
      ->delimiter(',');

  auto merge_args = std::make_shared<StudyArgs>();
  auto* merge = study->add_subcommand(
      "merge", "Combine the runs of several study directories (shards) into one report.");
  add_study_options(merge, *merge_args);
  merge->add_option("dirs", merge_args->merge_dirs, "study directories to combine")->required();
  merge->add_flag("--no-measure", merge_args->no_measure,
                  "do not measure the finished runs' event masses and missing-modality accuracy "
                  "that their study has not measured yet (a study still running, or killed)");
  merge->callback([merge_args] {
    const study::StudyConfig config = load(*merge_args);
    const std::string out = merge_args->out.empty() ? "results" : merge_args->out;
    // A study measures these when its runs are done; a merge of one that is still running (or
    // was killed) would otherwise lack the lifts. Written into the run directories, as the study
    // writes them, so each is measured once.
    if (!merge_args->no_measure) {
      for (const auto& dir : merge_args->merge_dirs) {
        study::evaluate_missing_modalities(config, dir);
        study::evaluate_event_masses(config, dir);
      }
    }
    std::cout << study::write_study_report(config, merge_args->merge_dirs, out);
  });
  study->callback([args, merge] {
    if (merge->parsed()) return;
    run_study_command(*args);
  });

  auto figure = std::make_shared<report::AttentionFigureOptions>();
  auto* attention = app.add_subcommand(
      "attention",
      "Draw the head-averaged attention maps of one test sample (paper Fig. 3): a teacher\n"
      "transformer and the student transformer distilled from it, and optionally the student\n"
      "trained alone. Example:\n"
      "  mmkd attention --teacher runs/teacher --student runs/edam --baseline runs/student "
      "--pair 'V<-A' --layers 1,2 --out fig.png");
  attention->add_option("--teacher", figure->teacher, "teacher run or checkpoint")->required();
  attention->add_option("--student", figure->student, "distilled student run or checkpoint")
      ->required();
  attention->add_option("--baseline", figure->baseline, "student trained alone (run)");
  attention->add_option("--pair", figure->pair, "teacher transformer, e.g. V<-A")
      ->capture_default_str();
  attention->add_option("--layers", figure->layers, "1-based layers, e.g. 1,2")
      ->capture_default_str()
      ->delimiter(',');
  attention->add_option("--sample", figure->sample, "sample index in the split")
      ->capture_default_str();
  attention->add_option("--split", figure->split, "train | valid | test")->capture_default_str();
  attention->add_option("--out", figure->out, "PNG file")->capture_default_str();
  attention->callback([figure] { std::cout << report::write_attention_figure(*figure) << "\n"; });

  auto demo_args = std::make_shared<StudyArgs>();
  demo_args->config = std::string(MMKD_CONFIG_DIR) + "/demo.yaml";
  demo_args->out = "runs/demo";
  auto* demo = app.add_subcommand(
      "demo",
      "The main job on built-in synthetic data: trains the Complete teacher, student (5) alone\n"
      "and with EDAM-S-down, prints the comparison table, writes the attention figure and\n"
      "report.html. About 10 minutes on 2 cores; run it again to reuse finished runs.\n"
      "Example:\n  mmkd demo --out runs/demo");
  demo->add_option("--config", demo_args->config, "the demo's study file")->capture_default_str();
  demo->add_option("--out", demo_args->out, "where the runs and the report go")
      ->capture_default_str();
  demo->add_option("--epochs", demo_args->epochs, "train.epochs of every run");
  demo->add_option("--threads", demo_args->threads, "intra-op threads (0 = one per free core)")
      ->check(CLI::NonNegativeNumber);
  demo->add_option("--run-set", demo_args->run_overrides, "override a key of every run");
  demo->callback([demo_args] {
    run_study_command(*demo_args);
    std::cout << "\nThe demo's report: " << demo_args->out
              << "/report.html; attention figure: " << demo_args->out
              << "/attention.png; table: " << demo_args->out << "/table1.md\n";
  });
}

}  // namespace mmkd::app
