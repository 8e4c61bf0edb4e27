#include "mmkd/train/run.h"

#include <iostream>
#include <thread>

#include "mmkd/core/error.h"
#include "mmkd/core/thread_budget.h"
#include "mmkd/data/batch_loader.h"
#include "mmkd/dist/process_group.h"
#include "mmkd/train/checkpoint.h"
#include "mmkd/train/evaluate.h"
#include "mmkd/train/labels.h"
#include "mmkd/train/latency.h"
#include "mmkd/train/metrics.h"

namespace mmkd::train {

models::InputShape input_shape_of(const data::MoseiData& data) {
  const data::Split& train = data.split("train");
  models::InputShape shape;
  for (size_t m = 0; m < 3; ++m) {
    shape.len[m] = train.features[m].size(1);
    shape.dim[m] = train.features[m].size(2);
  }
  return shape;
}

void set_threads(int64_t threads) {
  // Commands without a run config (eval, latency, bench) reach here straight from --threads.
  MMKD_CHECK(threads <= max_threads(), "--threads ", threads, ": ", threads,
             " threads on a machine with ", std::max(1u, std::thread::hardware_concurrency()),
             " cores; use at most ", max_threads(), " (0 = one per free core)");
  torch::set_num_threads(static_cast<int>(ThreadBudget(threads).threads()));
}

models::MultimodalNet build_seeded_model(const RunConfig& config, const models::InputShape& shape) {
  torch::manual_seed(static_cast<uint64_t>(config.train.seed));
  return models::build_model(config.model, shape);
}

RunMetrics finish_run(const RunConfig& config, const RunDir& dir, const data::MoseiData& data,
                      const FitResult& fit, const nlohmann::json& extra) {
  if (!dist::is_lead()) return {};  // rank 0 tests the best checkpoint and writes metrics.json
  const torch::Device device = parse_device(config.train.device);
  CheckpointInfo info;
  models::MultimodalNet best = load_model(dir.best(), device, &info);
  EvalOptions options;
  options.batch_size = config.train.eval_batch_size;
  options.device = device;
  // A non-finite test output stops here, before metrics.json could make the run look finished.
  options.context = dir.best() + " on the test split";
  const EvalResult test = evaluate(best, data.split("test"), options);
  RunMetrics metrics;
  metrics.model = best->config().describe();
  metrics.data = config.data.describe();
  metrics.best_epoch = fit.best_epoch;
  metrics.best_val_loss = fit.best_val_loss;
  metrics.epochs = fit.epochs_completed;
  metrics.test = test.to_json();
  metrics.majority_rate = majority_class_rate(sentiment_to_class(data.split("test").labels));
  metrics.parameters = best->parameter_count();
  metrics.projection_parameters = best->projection_parameter_count();
  metrics.latency = latency_record(best, device);
  metrics.extra = extra;
  metrics.write(dir);
  std::cerr << "test: " << test.summary() << "\n";
  return metrics;
}

data::MoseiData load_checkpoint_data(const CheckpointInfo& info) {
  const YAML::Node stored = YAML::Load(info.config_yaml);
  return data::load_data(data::parse_data_config(stored["data"], "data"));
}

RunMetrics run_training(const RunConfig& config, const RunDir& dir, bool resume) {
  set_threads(config.train.threads);
  dist::lead_log() << "data: " << config.data.describe() << "\n";
  const data::MoseiData data = data::load_data(config.data);
  const models::InputShape shape = input_shape_of(data);
  models::MultimodalNet model = build_seeded_model(config, shape);
  dist::lead_log() << "model: " << model->config().describe() << ", " << model->parameter_count()
                   << " parameters, inputs " << shape.describe() << "\n";
  TaskObjective objective(config.model);
  Trainer trainer(config, dir, model, objective, data);
  const FitResult fit = trainer.fit(resume);
  return finish_run(config, dir, data, fit);
}

}  // namespace mmkd::train
