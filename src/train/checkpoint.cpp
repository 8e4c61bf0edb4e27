#include "mmkd/train/checkpoint.h"

#include <caffe2/serialize/inline_container.h>

#include <filesystem>

#include "mmkd/core/atomic_file.h"
#include "mmkd/core/error.h"
#include "mmkd/core/zip_integrity.h"
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

/// Stored records are checked by verify_zip_crcs; the few deflated ones (LibTorch's code
/// records) are inflated by LibTorch's own reader and checked here.
void verify_checkpoint_crcs(const std::string& path) {
  const std::vector<CompressedRecord> compressed = verify_zip_crcs(path);
  if (compressed.empty()) return;
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    for (const CompressedRecord& record : compressed) {
      // The reader prefixes names with the archive's top folder itself.
      const std::string name = record.name.substr(record.name.find('/') + 1);
      const auto [data, size] = reader.getRecord(name);
      MMKD_CHECK(crc32_update(0, data.get(), size) == record.crc, path,
                 ": damaged checkpoint: record '", record.name,
                 "' fails its CRC check; the file was changed after it was written");
    }
  } catch (const c10::Error& e) {
    MMKD_FAIL(path, ": damaged checkpoint (", e.what_without_backtrace(), ")");
  }
}

void load_archive(torch::serialize::InputArchive& archive, const std::string& path) {
  MMKD_CHECK(std::filesystem::exists(path), path, ": no such checkpoint");
  verify_checkpoint_crcs(path);
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

/// A NaN or inf weight passes the CRC when it was saved that way (a diverged run); it would
/// turn every prediction into NaN, so it is refused with the tensor's name.
void check_finite(const models::MultimodalNet& model, const std::string& path) {
  auto check = [&](const std::string& kind, const std::string& name, const torch::Tensor& t) {
    MMKD_CHECK(!t.is_floating_point() || torch::isfinite(t).all().item<bool>(), path, ": ", kind,
               " '", name, "' holds non-finite values (NaN or inf); the checkpoint is damaged ",
               "or comes from a diverged run");
  };
  for (const auto& item : model->named_parameters()) check("parameter", item.key(), item.value());
  for (const auto& item : model->named_buffers()) check("buffer", item.key(), item.value());
}

}  // namespace

std::string archive_bytes(torch::serialize::OutputArchive& archive) {
  std::string bytes;
  archive.save_to([&](const void* data, size_t n) {
    bytes.append(static_cast<const char*>(data), n);
    return n;
  });
  return bytes;
}

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
  // Serialise into memory first (archive_bytes): AtomicOutput then reports a full disk as one
  // mmkd::Error and removes the temporary file.
  const std::string bytes = archive_bytes(archive);
  write_file_atomic(path, [&](AtomicOutput& out) { out.write(bytes); });
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
  check_finite(model, path);
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
