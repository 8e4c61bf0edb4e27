#include "mmkd/distill/distill_run.h"

#include <filesystem>
#include <iostream>

#include "mmkd/core/error.h"
#include "mmkd/core/rng_guard.h"
#include "mmkd/dist/process_group.h"
#include "mmkd/distill/diagnostics.h"
#include "mmkd/distill/distill_objective.h"
#include "mmkd/train/checkpoint.h"
#include "mmkd/train/graphed_step.h"
#include "mmkd/train/run.h"

namespace mmkd::distill {

namespace fs = std::filesystem;

std::string teacher_checkpoint(const std::string& run_or_checkpoint) {
  MMKD_CHECK(!run_or_checkpoint.empty(),
             "no teacher: give --teacher RUN_OR_CHECKPOINT or set distill.teacher");
  return train::checkpoint_of(run_or_checkpoint, "teacher");
}

namespace {

std::vector<std::string> names(const models::PairingConfig& pairing, bool student) {
  std::vector<std::string> list;
  for (const auto& pair : pairing.pairs) list.push_back(student ? pair.student : pair.teacher);
  return list;
}

/// Logs the teacher's event mass and warns when its maps are near chance.
std::vector<TransformerEventMass> check_teacher(models::MultimodalNet& teacher,
                                                const data::Split& valid,
                                                const DistillObjective& objective,
                                                const torch::Device& device) {
  const auto masses = split_event_mass(teacher, valid, names(objective.pairing(), false), device);
  dist::lead_log() << "teacher event mass (valid): " << describe(masses) << "\n";
  for (const auto& entry : masses) {
    if (entry.mass.lift() < objective.config().chance_warning_lift)
      dist::lead_log() << "warning: the teacher's " << entry.transformer
                       << " maps are near chance (x" << entry.mass.lift()
                       << "): they carry little about where the events are, so attention-map "
                          "distillation has little to transfer\n";
  }
  return masses;
}

}  // namespace

train::RunMetrics run_distillation(const train::RunConfig& config, const train::RunDir& dir,
                                   bool resume) {
  const DistillConfig distill = parse_distill_config(config.distill, "distill");
  train::set_threads(config.train.threads);
  const torch::Device device = train::parse_device(config.train.device);
  dist::lead_log() << "data: " << config.data.describe() << "\n";
  const data::MoseiData data = data::load_data(config.data);
  const models::InputShape shape = train::input_shape_of(data);
  models::MultimodalNet student = train::build_seeded_model(config, shape);
  models::MultimodalNet teacher{nullptr};
  {
    RngStateGuard keep_training_stream;  // the teacher's throw-away init must not shift it
    teacher = train::load_model(teacher_checkpoint(distill.teacher), device);
  }
  const auto seed = static_cast<uint64_t>(config.train.seed);
  DistillObjective objective(distill, student, teacher, data.split("train"), seed);
  dist::lead_log() << "distill: configuration " << objective.pairing().id << " ("
                   << objective.pairing().title << "), terms " << objective.name() << ", alpha "
                   << distill.alpha << "\nstudent: " << student->config().describe() << ", "
                   << student->parameter_count()
                   << " parameters\nteacher: " << teacher->config().describe() << "\n";

  // A graphed step replays the teacher's forward from the graph; the cache's host-side lookup
  // cannot be captured in one.
  if (train::use_cuda_graphs(config.train.cuda_graphs, device))
    dist::lead_log() << "teacher cache: off (CUDA graphs replay the teacher's forward)\n";
  else
    objective.use_teacher_cache(data.split("train"), distill.teacher_cache_mb * 1000000);

  const bool diagnostics = data.split("valid").has_events();
  nlohmann::json teacher_mass;
  if (diagnostics)
    teacher_mass = to_json(check_teacher(teacher, data.split("valid"), objective, device));

  train::Trainer trainer(config, dir, student, objective, data);
  if (diagnostics) {
    const auto student_names = names(objective.pairing(), true);
    for (const auto& name : student_names)
      trainer.extra_header += (trainer.extra_header.empty() ? "" : ",") + ("em_" + name);
    trainer.on_epoch = [&, student_names](train::EpochRecord& record) {
      const auto masses = split_event_mass(student, data.split("valid"), student_names, device);
      for (size_t i = 0; i < masses.size(); ++i)
        record.extra += (i ? "," : "") + std::to_string(masses[i].mass.mass);
    };
  }
  const train::FitResult fit = trainer.fit(resume);
  if (!dist::is_lead()) return {};  // rank 0 evaluates and writes the results
  // Everything distillation adds goes into the one metrics.json finish_run writes: a study
  // takes that file as "finished", so it must never exist without these keys.
  nlohmann::json extra;
  nlohmann::json terms = nlohmann::json::array();
  for (const auto& term : distill.terms) {
    nlohmann::json entry = {{"method", term.method}, {"weight", term.weight}};
    for (const auto& option : term.options)
      entry[option.first.as<std::string>()] = option.second.as<std::string>();
    if (!term.pairs.empty()) entry["pairs"] = term.pairs;
    terms.push_back(entry);
  }
  extra["distill"] = {{"configuration", objective.pairing().id},
                      {"method", objective.name()},
                      {"alpha", distill.alpha},
                      {"terms", terms},
                      {"teacher", distill.teacher}};
  if (diagnostics) {
    // Test-split event mass of both networks: the number that says whether the teacher's maps
    // held anything to distill and whether the student's moved toward them.
    models::MultimodalNet best = train::load_model(dir.best(), device);
    const auto student_mass =
        split_event_mass(best, data.split("test"), names(objective.pairing(), true), device);
    const auto teacher_test =
        split_event_mass(teacher, data.split("test"), names(objective.pairing(), false), device);
    std::cerr << "event mass (test): teacher " << describe(teacher_test) << "; student "
              << describe(student_mass) << "\n";
    extra["event_mass"] = {{"teacher_valid", teacher_mass},
                           {"teacher", to_json(teacher_test)},
                           {"student", to_json(student_mass)}};
  }
  return train::finish_run(config, dir, data, fit, extra);
}

}  // namespace mmkd::distill
