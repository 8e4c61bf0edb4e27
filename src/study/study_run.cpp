#include "mmkd/study/study_run.h"

#include <filesystem>
#include <iostream>

#include "mmkd/core/atomic_file.h"
#include "mmkd/core/error.h"
#include "mmkd/distill/diagnostics.h"
#include "mmkd/models/pairing.h"
#include "mmkd/report/attention_figure.h"
#include "mmkd/study/html_report.h"
#include "mmkd/study/study_table.h"
#include "mmkd/train/checkpoint.h"
#include "mmkd/train/evaluate.h"
#include "mmkd/train/run.h"

namespace mmkd::study {

namespace fs = std::filesystem;

std::string resolved_study_file(const StudyConfig& config) {
  const std::string stem = fs::path(config.source).stem().string();
  return (stem.empty() ? std::string("study") : stem) + ".resolved.yaml";
}

int64_t run_study(const StudyConfig& config, const StudyOptions& options) {
  std::vector<Job> jobs = select_shard(plan_study(config), options.shard);
  if (!options.only.empty()) jobs = select_rows(jobs, options.only);
  std::cerr << "study " << config.source << ": " << jobs.size() << " runs in this shard ("
            << options.shard.index << "/" << options.shard.count << "), " << config.seeds
            << " seed(s), into " << options.out << "\n";
  if (options.dry_run) {
    for (const auto& job : jobs) {
      const JobState state = job_state(options.out, job);
      std::cout << (state == JobState::kFinished    ? "finished "
                    : state == JobState::kResumable ? "resume   "
                                                    : "run      ");
      std::cout << " " << distill::command_line(job_request(job, options.out, options.runner))
                << "\n";
    }
    return 0;
  }
  fs::create_directories(options.out);
  write_text_atomic(options.out + "/" + resolved_study_file(config), config.resolved_yaml);
  const auto outcomes = run_jobs(jobs, options.out, options.runner);
  int64_t failed = 0;
  for (const auto& o : outcomes) failed += !o.ok;
  evaluate_missing_modalities(config, options.out);
  evaluate_event_masses(config, options.out);
  const std::string report_dir = options.report_dir.empty() ? options.out : options.report_dir;
  write_study_report(config, {options.out}, report_dir);
  if (failed) {
    std::cerr << "study: " << failed << " run(s) did not finish:\n";
    for (const auto& o : outcomes)
      if (!o.ok) std::cerr << "  " << o.run << ": " << o.message << "\n";
  }
  return failed;
}

void evaluate_missing_modalities(const StudyConfig& config, const std::string& out_dir) {
  if (!config.missing_modality) return;
  const auto& spec = *config.missing_modality;
  for (int64_t seed = 0; seed < config.seeds; ++seed) {
    const train::RunDir run = train::study_run_dir(out_dir, run_name(spec.teacher, seed));
    if (!run.finished()) continue;
    std::vector<std::string> todo;
    for (const auto& drop : spec.drop)
      if (!fs::exists(run.missing_modality(drop))) todo.push_back(drop);
    if (todo.empty()) continue;
    train::CheckpointInfo info;
    models::MultimodalNet model = train::load_model(run.best(), torch::kCPU, &info);
    const data::MoseiData data = train::load_checkpoint_data(info);
    for (const auto& drop : todo) {
      train::EvalOptions options;
      options.drop = data::parse_modality_list(drop, "study.missing_modality.drop");
      options.context = run.best() + " without " + drop + " on the test split";
      const train::EvalResult result = train::evaluate(model, data.split("test"), options);
      nlohmann::json j = result.to_json();
      j["dropped"] = drop;
      write_text_atomic(run.missing_modality(drop), j.dump(2) + "\n");
      std::cerr << "study: " << run_name(spec.teacher, seed) << " without " << drop << ": "
                << result.summary() << "\n";
    }
  }
}

namespace {

/// A teacher's every cross-modal transformer; a student's distilled ones only (its configuration's
/// pairs), so that a lone student's lift compares with its distilled twins'.
std::vector<std::string> measured_transformers(const models::MultimodalNet& model) {
  if (model->config().role == models::Role::kTeacher)
    return distill::cross_modal_transformers(model);
  std::vector<std::string> names;
  for (const auto& pair : models::pairing_for_student(model->config().student_arch).pairs)
    names.push_back(pair.student);
  return names;
}

}  // namespace

void evaluate_event_masses(const StudyConfig& config, const std::string& out_dir) {
  for (const auto& job : plan_study(config)) {
    if (!job.teacher.empty()) continue;
    const train::RunDir run = train::study_run_dir(out_dir, job.run_name());
    if (!run.finished() || fs::exists(run.event_mass())) continue;
    train::CheckpointInfo info;
    models::MultimodalNet model = train::load_model(run.best(), torch::kCPU, &info);
    const data::MoseiData data = train::load_checkpoint_data(info);
    const data::Split& test = data.split("test");
    if (!test.has_events()) continue;  // real data: no events, nothing to measure
    const auto masses =
        distill::split_event_mass(model, test, measured_transformers(model), torch::kCPU);
    train::write_event_mass_file(run, distill::to_json(masses));
    std::cerr << "study: " << job.run_name() << " event mass (test): " << distill::describe(masses)
              << "\n";
  }
}

namespace {

/// The directory of `<run>` in the first root that finished it, or "".
std::string find_run_path(const std::vector<std::string>& roots, const std::string& run) {
  const auto dir = find_run(roots, run);
  return dir ? dir->path : "";
}

}  // namespace

std::string write_study_report(const StudyConfig& config, const std::vector<std::string>& roots,
                               const std::string& report_dir) {
  fs::create_directories(report_dir);
  const std::vector<TableRow> rows = collect_table(config, roots);
  const std::string markdown = table_markdown(rows);
  write_text_atomic(report_dir + "/table1.md", markdown);
  write_text_atomic(report_dir + "/table1.csv", table_csv(rows));
  write_text_atomic(report_dir + "/runs.csv", runs_csv(rows));
  HtmlReport html;
  html.title = "mmkd study: " + config.source;
  html.rows = rows;
  html.roots = roots;
  html.config = config;
  if (config.figure) {
    const auto& f = *config.figure;
    const std::string teacher = find_run_path(roots, run_name(f.teacher, 0));
    const std::string student = find_run_path(roots, run_name(f.student, 0));
    const std::string baseline =
        f.baseline.empty() ? "" : find_run_path(roots, run_name(f.baseline, 0));
    if (!teacher.empty() && !student.empty() && (f.baseline.empty() || !baseline.empty())) {
      report::AttentionFigureOptions figure;
      figure.teacher = teacher;
      figure.student = student;
      figure.baseline = baseline;
      figure.pair = f.pair;
      figure.layers = f.layers;
      figure.out = report_dir + "/attention.png";
      std::cerr << "study: figure " << report::write_attention_figure(figure) << "\n";
      html.figures.push_back({"Attention maps (paper Fig. 3)", figure.out});
    }
  }
  for (const auto& name :
       {config.figure ? config.figure->teacher : "", config.figure ? config.figure->student : "",
        config.figure ? config.figure->baseline : ""}) {
    if (name.empty()) continue;
    const auto run = find_run(roots, run_name(name, 0));
    if (!run) continue;
    const train::RunMetrics metrics = train::RunMetrics::load(*run);
    const std::string out = report_dir + "/confusion-" + name + ".png";
    report::write_confusion_figure(metrics, "Confusion (test), " + name + " seed 0", out);
    html.figures.push_back({"Confusion matrix, " + name + " (seed 0)", out});
  }
  write_text_atomic(report_dir + "/report.html", render_html(html));
  std::cerr << "study: report in " << report_dir << "/ (table1.md, table1.csv, report.html)\n";
  return markdown;
}

}  // namespace mmkd::study
