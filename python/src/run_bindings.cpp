// mmkd.train / distill / evaluate / study and the KD-term registry: the library's run entry
// points, with progress lines handed to Python and Ctrl-C stopping between batches.
#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "bindings.h"
#include "mmkd/core/json_file.h"
#include "mmkd/distill/checkpoint_evaluation.h"
#include "mmkd/distill/kd_term.h"
#include "mmkd/distill/run_request.h"
#include "mmkd/study/study_run.h"

namespace mmkd::python {

namespace {

/// Whether the run in `dir` distils from a teacher (its config names one): how a resumed run
/// knows which objective it continues. False when it has no config; execute_run then says so.
bool distilled_run(const std::string& dir) {
  const std::string config = train::RunDir{dir}.config();
  if (!std::filesystem::exists(config)) return false;
  const YAML::Node distill = YAML::LoadFile(config)["distill"];
  return distill && distill.IsMap() && distill["teacher"];
}

py::dict execute(distill::RunRequest request, const py::object& on_line) {
  distill::RunOutcome outcome;
  {
    LongCall call(on_line);
    outcome = distill::execute_run(std::move(request));
  }
  py::dict out;
  out["run"] = outcome.dir.path;
  const auto metrics = read_json_file(outcome.dir.metrics());
  out["metrics"] = metrics ? to_python(*metrics) : py::object(py::none());
  return out;
}

py::dict evaluate(const distill::CheckpointEvalRequest& request) {
  distill::CheckpointEvaluation eval;
  {
    LongCall call{py::none()};
    eval = distill::evaluate_checkpoint(request);
  }
  return to_python(eval.to_json());
}

py::dict study(const std::string& config_path, const std::vector<std::string>& study_overrides,
               const std::vector<std::string>& run_overrides, study::StudyOptions options,
               const py::object& on_line) {
  study::StudyConfig config = study::load_study_config(config_path, study_overrides);
  config.overrides.insert(config.overrides.end(), run_overrides.begin(), run_overrides.end());
  // With a callback, the runs write their own output to <out>/logs/ and the study's lines go
  // to the callback; without one, a lone run prints to this process's stderr as in the CLI.
  options.runner.show_output = on_line.is_none();
  options.runner.host_threads = host_threads_at_import();
  int64_t failed = 0;
  {
    LongCall call(on_line);
    failed = study::run_study(config, options);
  }
  const std::string report = options.report_dir.empty() ? options.out : options.report_dir;
  py::dict out;
  out["failed"] = failed;
  out["out"] = options.out;
  out["report"] = report;
  return out;
}

py::list kd_term_infos() {
  const auto& registry = distill::kd_terms();
  py::list out;
  for (const auto& info : registry.methods()) {
    py::dict entry;
    entry["name"] = info.name;
    entry["summary"] = info.summary;
    entry["keys"] = info.keys;
    out.append(entry);
  }
  return out;
}

}  // namespace

void bind_runs(py::module_& m) {
  m.def(
      "run",
      [](bool with_teacher, const std::string& config, const std::vector<std::string>& overrides,
         const std::string& run_dir, bool resume, const std::string& teacher, int64_t threads,
         const std::string& device, const py::object& on_line) {
        distill::RunRequest request;
        request.distill = with_teacher || (resume && distilled_run(run_dir));
        request.config = config;
        request.overrides = overrides;
        request.run_dir = run_dir;
        request.resume = resume;
        request.teacher = teacher;
        request.threads = threads;
        request.device = device;
        return execute(std::move(request), on_line);
      },
      py::arg("distill"), py::arg("config"), py::arg("overrides"), py::arg("run_dir"),
      py::arg("resume"), py::arg("teacher"), py::arg("threads"), py::arg("device"),
      py::arg("on_line"));
  m.def(
      "evaluate",
      [](const std::string& checkpoint, const std::string& data, const std::string& split,
         const std::string& drop, const std::string& device) {
        distill::CheckpointEvalRequest request;
        request.checkpoint = checkpoint;
        request.data = data;
        request.split = split;
        request.drop = drop;
        request.drop_key = "drop";
        request.device = device;
        return evaluate(request);
      },
      py::arg("checkpoint"), py::arg("data"), py::arg("split"), py::arg("drop"), py::arg("device"));
  m.def(
      "study",
      [](const std::string& config, const std::vector<std::string>& study_overrides,
         const std::vector<std::string>& run_overrides, const std::string& out,
         const std::string& report_dir, const std::vector<std::string>& only, int64_t jobs,
         int64_t threads, const std::string& device, bool dry_run, const py::object& on_line) {
        study::StudyOptions options;
        options.out = out;
        options.report_dir = report_dir;
        options.only = only;
        options.runner.jobs = jobs;
        options.runner.threads = threads;
        options.runner.device = device;
        options.dry_run = dry_run;
        return study(config, study_overrides, run_overrides, options, on_line);
      },
      py::arg("config"), py::arg("study_overrides"), py::arg("run_overrides"), py::arg("out"),
      py::arg("report_dir"), py::arg("only"), py::arg("jobs"), py::arg("threads"),
      py::arg("device"), py::arg("dry_run"), py::arg("on_line"));
  m.def("kd_terms", &kd_term_infos);
  m.def("kd_term_names", [] { return distill::kd_terms().names(/*with_aliases=*/true); });
}

}  // namespace mmkd::python
