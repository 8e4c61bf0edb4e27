// Small models and data shared by the distillation tests.
#pragma once

#include "mmkd/data/batch_loader.h"
#include "mmkd/models/multimodal_net.h"
#include "mmkd/train/run.h"

namespace mmkd::distill {

inline models::ModelConfig narrow(models::ModelConfig config) {
  config.d_model = 8;
  config.heads = 2;
  config.layers = 2;
  return config;
}

inline models::ModelConfig teacher_config(models::TeacherArch arch) {
  models::ModelConfig config;
  config.role = models::Role::kTeacher;
  config.teacher_arch = arch;
  return narrow(config);
}

inline models::ModelConfig student_config(models::StudentArch arch, models::ProxyMode mode) {
  models::ModelConfig config;
  config.role = models::Role::kStudent;
  config.student_arch = arch;
  config.proxy_mode = mode;
  return narrow(config);
}

/// A tiny data set and a batch of it.
struct TinyData {
  data::MoseiData data;
  models::InputShape shape;
  TinyData() {
    data::DataConfig config;
    config.preset = "tiny";
    data = data::load_data(config);
    shape = train::input_shape_of(data);
  }
  data::Batch batch(int64_t size = 8) const {
    data::BatchLoaderOptions options;
    options.batch_size = size;
    return data::BatchLoader(data.split("train"), options).batch(0);
  }
};

}  // namespace mmkd::distill
