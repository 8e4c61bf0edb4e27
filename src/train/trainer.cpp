#include "mmkd/train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>

#include "mmkd/core/atomic_file.h"
#include "mmkd/core/error.h"
#include "mmkd/core/interrupt.h"
#include "mmkd/core/sha256.h"
#include "mmkd/core/torch_compat.h"
#include "mmkd/data/batch_loader.h"
#include "mmkd/dist/batch_share.h"
#include "mmkd/dist/process_group.h"
#include "mmkd/train/checkpoint.h"
#include "mmkd/train/evaluate.h"
#include "mmkd/train/plateau_scheduler.h"

namespace mmkd::train {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string format_duration(double seconds) {
  std::ostringstream out;
  const auto total = static_cast<int64_t>(seconds + 0.5);
  if (total >= 3600) out << total / 3600 << "h";
  if (total >= 60)
    out << std::setw(total >= 3600 ? 2 : 1) << std::setfill('0') << (total / 60) % 60 << "m";
  out << std::setw(total >= 60 ? 2 : 1) << std::setfill('0') << total % 60 << "s";
  return out.str();
}

/// A live one-line bar on a terminal; nothing when stderr is a file or pipe.
class ProgressBar {
 public:
  ProgressBar(bool enabled, int64_t epoch, int64_t total)
      : enabled_(enabled && isatty(STDERR_FILENO)), epoch_(epoch), total_(total) {}
  void update(int64_t done, double loss, double elapsed) {
    if (!enabled_) return;
    const int width = 24;
    const int filled = static_cast<int>(width * done / std::max<int64_t>(1, total_));
    const double eta = done > 0 ? elapsed / done * (total_ - done) : 0.0;
    std::cerr << "\r  epoch " << epoch_ << " [" << std::string(filled, '#')
              << std::string(width - filled, '.') << "] " << done << "/" << total_ << " loss "
              << std::fixed << std::setprecision(4) << loss << " " << std::setprecision(1)
              << done / std::max(1e-9, elapsed) << " batch/s ETA " << format_duration(eta) << "   "
              << std::flush;
  }
  void clear() {
    if (enabled_) std::cerr << "\r" << std::string(90, ' ') << "\r" << std::flush;
  }

 private:
  bool enabled_;
  int64_t epoch_, total_;
};

/// What a run stopped by a non-finite value leaves to resume from.
std::string stopped_note(const std::string& last) {
  const std::string where = std::filesystem::exists(last) ? "the last good checkpoint is " + last
                                                          : "no checkpoint had been written yet";
  return "training stopped; " + where + " (lower train.lr or check the data for extreme values)";
}

/// evaluate() on the validation split; a failure (a non-finite output above all) stops the run
/// before this epoch's checkpoints replace the last good ones, and says so.
EvalResult validate(models::MultimodalNet& model, const data::Split& split,
                    const EvalOptions& options, const std::string& last) {
  try {
    return evaluate(model, split, options);
  } catch (const Error& e) {
    MMKD_FAIL(e.what(), "; ", stopped_note(last));
  }
}

/// Rows [begin, end) of a batch: one rank's share of a global batch.
data::Batch rows_of(const data::Batch& batch, int64_t begin, int64_t end) {
  const auto rows = [&](const torch::Tensor& t) {
    return t.defined() ? t.slice(0, begin, end) : t;
  };
  data::Batch share;
  for (size_t m = 0; m < 3; ++m) {
    share.features[m] = rows(batch.features[m]);
    share.padding[m] = rows(batch.padding[m]);
    share.events[m] = rows(batch.events[m]);
  }
  share.classes = rows(batch.classes);
  share.targets = rows(batch.targets);
  share.index = rows(batch.index);
  return share;
}

/// What the ranks must agree on before training together: the resolved configuration and the
/// training split (sizes and sums, which differ for other data or another preprocessing).
std::string data_fingerprint(const data::Split& train) {
  std::ostringstream out;
  out << std::setprecision(10) << "samples " << train.labels.size(0) << "\nlabel sum "
      << train.labels.to(torch::kFloat64).sum().item<double>();
  for (size_t m = 0; m < 3; ++m) {
    out << "\nmodality " << m << " shape " << train.features[m].sizes() << " sum "
        << train.features[m].to(torch::kFloat64).sum().item<double>();
  }
  return out.str();
}

std::vector<torch::Tensor> trainable(models::MultimodalNet& model, Objective& objective) {
  std::vector<torch::Tensor> params = model->parameters();
  for (auto& p : objective.parameters()) params.push_back(p);
  return params;
}

}  // namespace

torch::Device parse_device(const std::string& name) {
  torch::Device device = torch::kCPU;
  try {
    device = torch::Device(name);
  } catch (const c10::Error&) {
    MMKD_FAIL("device '", name, "': expected cpu, cuda or cuda:N");
  }
  if (device.is_cuda()) {
    MMKD_CHECK(torch::cuda::is_available(), "device '", name,
               "': this build of LibTorch has no CUDA or no GPU is visible; use --device cpu");
    MMKD_CHECK(
        !device.has_index() || device.index() < static_cast<int>(torch::cuda::device_count()),
        "device '", name, "': only ", torch::cuda::device_count(), " GPU(s) visible");
  }
  return device;
}

Trainer::Trainer(RunConfig config, RunDir dir, models::MultimodalNet model, Objective& objective,
                 const data::MoseiData& data)
    : config_(std::move(config)),
      dir_(std::move(dir)),
      model_(std::move(model)),
      objective_(objective),
      data_(data),
      device_(parse_device(config_.train.device)),
      adam_kernel_(resolve_adam_kernel(config_.train.adam, device_)),
      thread_budget_(config_.train.threads) {
  torch::set_num_threads(static_cast<int>(thread_budget_.threads()));
  if (config_.train.autocast == "bf16") {
    MMKD_CHECK(compat::bf16_autocast_supported(device_.type()), config_.source,
               ": config key 'train.autocast': bf16 on ", device_.str(),
               " needs LibTorch 2.x or a GPU (this build: LibTorch ", compat::torch_version(),
               ", whose CPU LayerNorm takes no bf16 input); use off");
    autocast_ = torch::kBFloat16;
  }
  MMKD_CHECK(
      config_.model.output == models::OutputMode::kRegression || config_.model.num_classes == 7,
      config_.source, ": model.num_classes must be 7 (the sentiment classes -3..3), got ",
      config_.model.num_classes);
}

void Trainer::follow_thread_budget() {
  const int64_t before = torch::get_num_threads();
  const int64_t now = thread_budget_.update();
  if (now == before) return;
  torch::set_num_threads(static_cast<int>(now));
  // Only when it changes: on a shared machine that is now and then, not every batch.
  std::cerr << "threads: " << before << " -> " << now << " (other processes "
            << (now < before ? "took" : "left") << " cores; train.threads: 0 follows them)\n";
}

LossParts Trainer::forward_backward(const data::Batch& batch) {
  LossParts loss;
  {
    // In a distributed step, losses averaged over a batch-dependent count take the global
    // batch's count (dist::batch_mean).
    std::optional<dist::BatchShare> share;
    if (dist::world() != nullptr) share.emplace(loss_weight_, share_rows_);
    // Autocast covers the forward and the loss; backward runs outside it, as PyTorch advises.
    const compat::AutocastGuard autocast(device_.type(), autocast_);
    const models::ModelInputs inputs{batch.features, batch.padding};
    const models::ModelOutput out = model_->forward(inputs, taps_);
    loss = objective_.compute(batch, out, /*training=*/true);
  }
  // Across ranks, each share's mean loss weighs by its rows, so that the summed gradients are
  // those of the global batch's mean.
  (loss_weight_ == 1.0 ? loss.total : loss.total * loss_weight_).backward();
  return loss;
}

void Trainer::check_ranks_agree(int64_t epoch) {
  dist::ProcessGroup* group = dist::world();
  if (group == nullptr) return;
  // The objective's state (CRD's memory banks and Z, heads, the sampling stream) must be the
  // same on every rank, or rank 0's checkpoint would not be the run's: compare digests.
  torch::serialize::OutputArchive archive;
  objective_.save(archive);
  group->check_same("distillation state (memory banks, heads) after epoch " + std::to_string(epoch),
                    sha256_hex(archive_bytes(archive)), "the ranks drifted apart in their",
                    "a distributed loss did not keep its state in step: please report it with "
                    "the command (the run resumes from its last checkpoint in one process)");
}

double Trainer::train_epoch(int64_t epoch, torch::optim::Adam& optimizer, EpochRecord& record) {
  data::BatchLoaderOptions options;
  options.batch_size = config_.train.batch_size;
  options.seed = static_cast<uint64_t>(config_.train.seed);
  data::BatchLoader loader(data_.split("train"), options);
  loader.set_epoch(epoch);
  model_->train();
  objective_.set_training(true);
  ProgressBar bar(config_.train.progress, epoch + 1, loader.num_batches());
  const auto start = Clock::now();
  double total = 0, task = 0, kd = 0;
  int64_t seen = 0;
  dist::ProcessGroup* group = dist::world();
  for (int64_t i = 0; i < loader.num_batches(); ++i) {
    check_interrupt();  // before the step: last.pt stays the end of the previous epoch
    follow_thread_budget();
    data::Batch batch = loader.batch(i);
    const int64_t global_rows = batch.size();
    if (group != nullptr && global_rows >= group->size()) {
      const int64_t begin = global_rows * group->rank() / group->size();
      const int64_t end = global_rows * (group->rank() + 1) / group->size();
      batch = rows_of(batch, begin, end);
      loss_weight_ = static_cast<double>(end - begin) / static_cast<double>(global_rows);
      share_rows_ = {begin, end, global_rows, /*replicated=*/false};
    } else if (group != nullptr) {
      // Fewer rows than ranks (a short last batch): every rank computes the whole batch at
      // weight 1/W, so no share is empty and every rank runs the same losses and collectives.
      loss_weight_ = 1.0 / static_cast<double>(group->size());
      share_rows_ = {0, global_rows, global_rows, /*replicated=*/true};
    }
    batch = batch.to(device_);
    const LossParts loss = run_train_step(
        graphed_.get(), optimizer, [this](const data::Batch& b) { return forward_backward(b); },
        batch);
    double value = loss.total.item<double>();
    double task_value = loss.task.item<double>();
    double kd_value = loss.kd.defined() ? loss.kd.item<double>() : 0.0;
    if (group != nullptr) {
      // The shares' losses weighted by their rows sum to the global batch's; they travel with
      // the gradients in one all-reduce.
      const auto weighted =
          torch::tensor({value, task_value, kd_value}, torch::kFloat64) * loss_weight_;
      const auto start_reduce = Clock::now();
      const auto sums = dist::sum_gradients(*group, trainable(model_, objective_), weighted);
      reduce_seconds_ += seconds_since(start_reduce);
      ++reduce_steps_;
      value = sums[0].item<double>();
      task_value = sums[1].item<double>();
      kd_value = sums[2].item<double>();
    }
    MMKD_CHECK(std::isfinite(value), "epoch ", epoch + 1, ", batch ", i + 1, ": the loss is ",
               value, "; ", stopped_note(dir_.last()));
    if (config_.train.clip > 0) {
      // The network and the distillation heads are clipped apart: the heads' gradients must not
      // change how the network's are scaled (with beta = 0 the student trains as if alone).
      torch::nn::utils::clip_grad_norm_(model_->parameters(), config_.train.clip);
      const auto heads = objective_.parameters();
      if (!heads.empty()) torch::nn::utils::clip_grad_norm_(heads, config_.train.clip);
    }
    adam_step(optimizer, adam_kernel_);
    const int64_t n = global_rows;
    seen += n;
    total += value * n;
    task += task_value * n;
    kd += kd_value * n;
    bar.update(i + 1, total / seen, seconds_since(start));
  }
  bar.clear();
  record.train_loss = total / seen;
  record.train_task = task / seen;
  record.train_kd = kd / seen;
  return record.train_loss;
}

void Trainer::write_log() const {
  std::ostringstream csv;
  csv << "epoch,train_loss,train_task,train_kd,val_loss,val_acc7,val_f1,lr,seconds";
  if (!extra_header.empty()) csv << "," << extra_header;
  csv << "\n" << std::setprecision(8);
  for (const auto& r : log_) {
    csv << r.epoch << "," << r.train_loss << "," << r.train_task << "," << r.train_kd << ","
        << r.val_loss << "," << r.val_accuracy << "," << r.val_f1 << "," << r.lr << ","
        << r.seconds;
    if (!extra_header.empty()) csv << "," << r.extra;
    csv << "\n";
  }
  write_text_atomic(dir_.log(), csv.str());
}

void Trainer::restore_log(int64_t epochs) {
  std::ifstream in(dir_.log());
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line) && static_cast<int64_t>(log_.size()) < epochs) {
    std::istringstream row(line);
    EpochRecord r;
    char comma;
    row >> r.epoch >> comma >> r.train_loss >> comma >> r.train_task >> comma >> r.train_kd >>
        comma >> r.val_loss >> comma >> r.val_accuracy >> comma >> r.val_f1 >> comma >> r.lr >>
        comma >> r.seconds;
    if (row.peek() == ',') {
      row.get();
      std::getline(row, r.extra);
    }
    if (r.epoch >= 1 && r.epoch <= epochs) log_.push_back(r);
  }
}

void Trainer::join_ranks() {
  dist::ProcessGroup* group = dist::world();
  if (group == nullptr) return;
  MMKD_CHECK(!device_.is_cuda(), config_.source, ": a distributed run on ", device_.str(),
             " needs NCCL, which mmkd does not use yet; distributed runs train on the CPU (Gloo)");
  group->check_same("configuration", YAML::Dump(config_.resolved()) + "\nrun " + dir_.path);
  group->check_same("training data", data_fingerprint(data_.split("train")));
  // The same seed builds the same weights everywhere; rank 0's are sent anyway, as DDP does, so
  // that a rank built differently (another LibTorch) cannot train a different network unnoticed.
  std::vector<torch::Tensor> state;
  for (const auto& p : trainable(model_, objective_)) state.push_back(p.detach());  // same memory
  group->broadcast(state, 0, "sending rank 0's weights");
}

double Trainer::lead_value(double value) {
  dist::ProcessGroup* group = dist::world();
  if (group == nullptr) return value;
  // Every rank evaluates the whole validation split; rank 0's number decides for all, so that a
  // last-bit difference can never send the ranks down different branches.
  std::vector<torch::Tensor> holder{torch::tensor({value}, torch::kFloat64)};
  group->broadcast(holder, 0, "sending rank 0's validation loss");
  return holder[0].item<double>();
}

FitResult Trainer::fit(bool resume) {
  const bool lead = dist::is_lead();
  if (lead) std::filesystem::create_directories(dir_.path);
  model_->to(device_);
  objective_.to(device_);
  torch::optim::Adam optimizer(
      trainable(model_, objective_),
      torch::optim::AdamOptions(config_.train.lr).weight_decay(config_.train.weight_decay));
  PlateauSchedulerOptions schedule;
  schedule.patience = config_.train.patience;
  schedule.factor = config_.train.factor;
  PlateauScheduler scheduler(optimizer, schedule);

  CheckpointInfo info;
  info.config_yaml = YAML::Dump(config_.resolved());
  info.shape = model_->input_shape();
  info.best_val_loss = std::numeric_limits<double>::infinity();
  FitResult result;
  const TrainingState state{&optimizer, &objective_, true};
  if (resume && std::filesystem::exists(dir_.last())) {
    const CheckpointInfo stored = load_checkpoint_into(dir_.last(), model_, state);
    model_->to(device_);
    move_adam_state_to_params(optimizer);
    info.epoch = stored.epoch;
    info.best_val_loss = stored.best_val_loss;
    info.best_epoch = stored.best_epoch;
    scheduler.load_state(
        PlateauSchedulerState::from_json(nlohmann::json::parse(stored.scheduler_json)));
    restore_log(info.epoch);
    result.resumed = true;
    dist::lead_log() << "resuming " << dir_.path << " after epoch " << info.epoch << "\n";
  }
  if (lead) write_text_atomic(dir_.config(), YAML::Dump(config_.resolved()) + "\n");
  taps_ = objective_.taps();
  if (use_cuda_graphs(config_.train.cuda_graphs, device_)) {
    graphed_ = make_graphed_train_step([this](const data::Batch& b) { return forward_backward(b); },
                                       trainable(model_, objective_), device_);
  }
  join_ranks();

  const int64_t epochs = config_.train.epochs;
  const auto run_start = Clock::now();
  const int64_t first = info.epoch;
  // Checked before each epoch, so a resumed run that had already converged stops at once.
  const auto converged = [&] {
    return config_.train.early_stop > 0 && info.epoch - info.best_epoch >= config_.train.early_stop;
  };
  for (int64_t epoch = info.epoch; epoch < epochs && !converged(); ++epoch) {
    const auto start = Clock::now();
    EpochRecord record;
    record.epoch = epoch + 1;
    record.lr = scheduler.learning_rates().front();
    train_epoch(epoch, optimizer, record);
    EvalOptions eval_options;
    eval_options.batch_size = config_.train.eval_batch_size;
    eval_options.device = device_;
    eval_options.context = "epoch " + std::to_string(epoch + 1) + ", validation";
    const EvalResult val = validate(model_, data_.split("valid"), eval_options, dir_.last());
    record.val_loss = lead_value(val.loss);
    record.val_accuracy = val.accuracy();
    record.val_f1 = val.f1_weighted();
    if (on_epoch) on_epoch(record);
    scheduler.step(record.val_loss);
    record.seconds = seconds_since(start);
    info.epoch = epoch + 1;
    info.scheduler_json = scheduler.state().to_json().dump();
    const bool improved = record.val_loss < info.best_val_loss;
    if (improved) {
      info.best_val_loss = record.val_loss;
      info.best_epoch = epoch + 1;
      if (lead) save_checkpoint(dir_.best(), model_, info);
    }
    if (lead) save_checkpoint(dir_.last(), model_, info, state);
    check_ranks_agree(epoch + 1);
    log_.push_back(record);
    if (lead) write_log();
    if (!lead) continue;
    const double per_epoch = seconds_since(run_start) / static_cast<double>(epoch + 1 - first);
    std::cerr << "epoch " << std::setw(3) << epoch + 1 << "/" << epochs << std::fixed
              << std::setprecision(4) << "  train " << record.train_loss << "  val " << val.loss
              << "  acc7 " << val.accuracy() << "  F1 " << val.f1_weighted() << std::scientific
              << std::setprecision(1) << "  lr " << record.lr << std::fixed << std::setprecision(1)
              << "  " << record.seconds << "s" << (improved ? "  *best" : "") << "  ETA "
              << format_duration(per_epoch * static_cast<double>(epochs - epoch - 1))
              << (record.extra.empty() ? "" : "  " + record.extra) << "\n";
  }
  if (reduce_steps_ > 0 && lead) {
    int64_t floats = 0;
    for (const auto& p : trainable(model_, objective_)) floats += p.numel();
    std::cerr << "all-reduce: " << floats + 3 << " floats (" << std::setprecision(2)
              << (floats + 3) * 4 / 1e6 << " MB) per step, " << std::setprecision(1)
              << 1000 * reduce_seconds_ / reduce_steps_ << " ms per step on average over "
              << reduce_steps_ << " steps, " << dist::world()->size() << " ranks\n";
  }
  if (converged() && info.epoch < epochs && lead)
    std::cerr << "early stop after epoch " << info.epoch
              << ": no lower validation loss since epoch " << info.best_epoch
              << " (train.early_stop " << config_.train.early_stop << ")\n";
  result.epochs_completed = info.epoch;
  result.best_val_loss = info.best_val_loss;
  result.best_epoch = info.best_epoch;
  return result;
}

}  // namespace mmkd::train
