#include "mmkd/train/checkpoint.h"

#include <filesystem>

#include "mmkd/core/atomic_file.h"
#include "mmkd/core/error.h"
#include "mmkd/models/model_config_yaml.h"

namespace mmkd::train {

namespace {

constexpr int64_t kFormatVersion = 1;

torch::Tensor shape_tensor(const models::InputShape& shape) {
  return torch::tensor(
      {shape.len[0], shape.len[1], shape.len[2], shape.dim[0], shape.dim[1], shape.dim[2]},
      torch::kLong);
}

models::InputShape shape_from(const torch::Tensor& t) {
  models::InputShape shape;
  for (int i = 0; i < 3; ++i) {
    shape.len[i] = t[i].item<int64_t>();
    shape.dim[i] = t[3 + i].item<int64_t>();
  }
  return shape;
}

void write_info(torch::serialize::OutputArchive& archive, const CheckpointInfo& info) {
  archive.write("mmkd_format", c10::IValue(kFormatVersion));
  archive.write("config_yaml", c10::IValue(info.config_yaml));
  archive.write("input_shape", shape_tensor(info.shape), /*is_buffer=*/true);
  archive.write("epoch", c10::IValue(info.epoch));
  archive.write("best_val_loss", c10::IValue(info.best_val_loss));
  archive.write("best_epoch", c10::IValue(info.best_epoch));
  archive.write("scheduler_json", c10::IValue(info.scheduler_json));
}

CheckpointInfo read_info(torch::serialize::InputArchive& archive, const std::string& path) {
  c10::IValue value;
  MMKD_CHECK(archive.try_read("mmkd_format", value), path,
             ": not an mmkd checkpoint (no 'mmkd_format' record)");
  MMKD_CHECK(value.toInt() == kFormatVersion, path, ": checkpoint format ", value.toInt(),
             ", this build reads format ", kFormatVersion);
  CheckpointInfo info;
  archive.read("config_yaml", value);
  info.config_yaml = value.toStringRef();
  torch::Tensor shape;
  archive.read("input_shape", shape, /*is_buffer=*/true);
  info.shape = shape_from(shape);
  archive.read("epoch", value);
  info.epoch = value.toInt();
  archive.read("best_val_loss", value);
  info.best_val_loss = value.toDouble();
  archive.read("best_epoch", value);
  info.best_epoch = value.toInt();
  archive.read("scheduler_json", value);
  info.scheduler_json = value.toStringRef();
  return info;
}

void load_archive(torch::serialize::InputArchive& archive, const std::string& path) {
  MMKD_CHECK(std::filesystem::exists(path), path, ": no such checkpoint");
  try {
    // Always onto the CPU: a checkpoint written on a GPU loads anywhere; callers move it.
    archive.load_from(path, torch::Device(torch::kCPU));
  } catch (const c10::Error& e) {
    MMKD_FAIL(path, ": cannot read checkpoint (", e.what_without_backtrace(), ")");
  }
}

models::ModelConfig config_of(const CheckpointInfo& info, const std::string& path) {
  try {
    return models::parse_model_config(YAML::Load(info.config_yaml)["model"], "model");
  } catch (const std::exception& e) {
    MMKD_FAIL(path, ": its stored config does not parse: ", e.what());
  }
}

}  // namespace

void save_checkpoint(const std::string& path, models::MultimodalNet& model,
                     const CheckpointInfo& info, const TrainingState& state) {
  torch::serialize::OutputArchive archive;
  write_info(archive, info);
  torch::serialize::OutputArchive model_archive;
  model->save(model_archive);
  archive.write("model", model_archive);
  if (state.optimizer) {
    torch::serialize::OutputArchive optimizer_archive;
    state.optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
  }
  if (state.objective) {
    torch::serialize::OutputArchive objective_archive;
    state.objective->save(objective_archive);
    archive.write("objective", objective_archive);
  }
  if (state.rng) {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    archive.write("rng_cpu", generator.get_state(), /*is_buffer=*/true);
  }
  std::filesystem::create_directories(std::filesystem::path(path).parent_path().empty()
                                          ? std::filesystem::path(".")
                                          : std::filesystem::path(path).parent_path());
  write_file_atomic(path, [&](const std::string& tmp) { archive.save_to(tmp); });
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  torch::serialize::InputArchive archive;
  load_archive(archive, path);
  return read_info(archive, path);
}

CheckpointInfo load_checkpoint_into(const std::string& path, models::MultimodalNet& model,
                                    const TrainingState& state) {
  torch::serialize::InputArchive archive;
  load_archive(archive, path);
  CheckpointInfo info = read_info(archive, path);
  const models::ModelConfig stored = config_of(info, path);
  const std::string have = stored.describe() + " for inputs " + info.shape.describe();
  const std::string want =
      model->config().describe() + " for inputs " + model->input_shape().describe();
  MMKD_CHECK(have == want, path, ": checkpoint holds a ", have, ", but the run builds a ", want);
  torch::serialize::InputArchive model_archive;
  archive.read("model", model_archive);
  try {
    model->load(model_archive);
  } catch (const c10::Error& e) {
    MMKD_FAIL(path, ": weights do not fit the network (", e.what_without_backtrace(), ")");
  }
  if (state.optimizer) {
    torch::serialize::InputArchive optimizer_archive;
    MMKD_CHECK(archive.try_read("optimizer", optimizer_archive), path,
               ": holds no optimiser state (only a 'last' checkpoint can resume a run)");
    state.optimizer->load(optimizer_archive);
  }
  if (state.objective) {
    torch::serialize::InputArchive objective_archive;
    MMKD_CHECK(archive.try_read("objective", objective_archive), path,
               ": holds no distillation state");
    state.objective->load(objective_archive);
  }
  if (state.rng) {
    torch::Tensor rng;
    if (archive.try_read("rng_cpu", rng, /*is_buffer=*/true)) {
      auto generator = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(rng);
    }
  }
  return info;
}

models::MultimodalNet load_model(const std::string& path, const torch::Device& device,
                                 CheckpointInfo* info_out) {
  const CheckpointInfo info = read_checkpoint_info(path);
  models::MultimodalNet model = models::build_model(config_of(info, path), info.shape);
  load_checkpoint_into(path, model, TrainingState{nullptr, nullptr, false});
  model->to(device);
  model->eval();
  if (info_out) *info_out = info;
  return model;
}

}  // namespace mmkd::train
