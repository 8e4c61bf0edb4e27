#include "mmkd/distill/distill_objective.h"

#include "mmkd/core/error.h"
#include "mmkd/core/rng_guard.h"
#include "mmkd/distill/edam.h"
#include "mmkd/distill/event_geometry.h"
#include "mmkd/distill/event_mass.h"
#include "mmkd/nn/transformer_encoder.h"
#include "mmkd/train/labels.h"

namespace mmkd::distill {

const models::PairingConfig& resolve_pairing(const DistillConfig& config,
                                             const models::ModelConfig& student) {
  MMKD_CHECK(student.role == models::Role::kStudent,
             "distillation trains a student: model.role must be 'student'");
  const models::PairingConfig& by_student = models::pairing_for_student(student.student_arch);
  if (config.configuration == 0) return by_student;
  const models::PairingConfig& chosen = models::pairing(config.configuration);
  MMKD_CHECK(chosen.student == student.student_arch,
             "config key 'distill.configuration': ", config.configuration, " (", chosen.title,
             ") distils into student ", static_cast<int>(chosen.student),
             ", but model.architecture is student ", static_cast<int>(student.student_arch));
  return chosen;
}

void freeze(models::MultimodalNet& teacher) {
  teacher->eval();
  for (auto& p : teacher->parameters()) p.set_requires_grad(false);
}

namespace {

nn::TapRequest what_to_tap(Method method) {
  nn::TapRequest what;
  switch (method) {
    case Method::kCrdPostAttention:
      what.post_attention = true;
      what.map = true;  // to know which rows are real
      break;
    case Method::kCrdAttentionMap:
      what.map = true;
      break;
    case Method::kEdam:
    case Method::kIdealMap:
      what.logits = true;
      break;
    default:
      break;
  }
  return what;
}

/// Rows that carry attention in both maps (fully masked rows are zero rows).
torch::Tensor live_rows(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sum(-1).gt(0) & b.sum(-1).gt(0);
}

torch::Tensor mean_of(const std::vector<torch::Tensor>& terms) {
  return torch::stack(terms).mean();
}

}  // namespace

DistillObjective::DistillObjective(DistillConfig config, models::MultimodalNet student,
                                   models::MultimodalNet teacher, const data::Split& train,
                                   uint64_t seed)
    : config_(std::move(config)),
      pairing_(&resolve_pairing(config_, student->config())),
      student_(std::move(student)),
      teacher_(std::move(teacher)),
      heads_(std::make_shared<torch::nn::Module>("DistillHeads")),
      generator_(at::make_generator<at::CPUGeneratorImpl>(seed * 7919ULL + 101ULL)) {
  MMKD_CHECK(teacher_->config().role == models::Role::kTeacher &&
                 teacher_->config().teacher_arch == pairing_->teacher,
             "configuration ", pairing_->id, " (", pairing_->title, ") needs a ",
             models::teacher_arch_title(pairing_->teacher), " teacher; the given teacher is a ",
             teacher_->config().describe());
  MMKD_CHECK(teacher_->input_shape().describe() == student_->input_shape().describe(),
             "the teacher was trained on inputs ", teacher_->input_shape().describe(),
             " but the data has ", student_->input_shape().describe());
  MMKD_CHECK(config_.method != Method::kIdealMap || train.has_events(),
             "method ideal_map distils maps uniform over the true event steps, but the data has no "
             "'events' key (only the built-in synthetic data records them)");
  freeze(teacher_);
  std::vector<std::string> student_names, teacher_names;
  for (const auto& pair : pairing_->pairs) {
    student_names.push_back(pair.student);
    teacher_names.push_back(pair.teacher);
  }
  const nn::TapRequest what = what_to_tap(config_.method);
  if (what.any()) {
    student_taps_ = {what, student_names};
    teacher_taps_ = {what, teacher_names};
    if (config_.method == Method::kIdealMap) teacher_taps_ = {};
  }
  check_shapes();
  RngStateGuard keep_training_stream;  // heads must not shift the student's dropout masks
  torch::manual_seed(seed + 1000003ULL);
  build_heads(train);
}

void DistillObjective::check_shapes() const {
  const bool layer_wise = config_.method == Method::kCrdPostAttention ||
                          config_.method == Method::kCrdAttentionMap ||
                          config_.method == Method::kEdam;
  MMKD_CHECK(!layer_wise || teacher_->config().layers == student_->config().layers, "method ",
             method_name(config_.method),
             " pairs layer i of the student with layer i of the teacher: both need the same "
             "number of layers (student ",
             student_->config().layers, ", teacher ", teacher_->config().layers, ")");
  if (!uses_attention_maps(config_.method) && config_.method != Method::kCrdPostAttention) return;
  const bool upsample =
      config_.method == Method::kEdam && student_->config().proxy_mode == models::ProxyMode::kKeep;
  for (const auto& pair : pairing_->pairs) {
    const auto s = map_shape(student_, pair.student);
    const auto t = map_shape(teacher_, pair.teacher);
    MMKD_CHECK(upsample || s == t, "method ", method_name(config_.method), ": student map ",
               pair.student, " is ", s[0], "x", s[1], " but teacher map ", pair.teacher, " is ",
               t[0], "x", t[1], "; use model.proxy_mode: downsample (EDAM-S↓) so the proxies take ",
               "the teacher's lengths, or method edam with proxy_mode keep (EDAM-T↑)");
  }
}

void DistillObjective::build_heads(const data::Split& train) {
  const torch::Tensor classes = train::sentiment_to_class(train.labels);
  const int64_t layers = student_->config().layers;
  switch (config_.method) {
    case Method::kCrdFinal:
    case Method::kCrdPenultimate: {
      const bool final = config_.method == Method::kCrdFinal;
      const auto width = [&](const models::MultimodalNet& net) {
        return final ? net->config().output_dim() : penultimate_dim(net);
      };
      CrdOptions options;
      options.embed_dim = config_.crd.embed_dim;
      options.num_negatives = config_.crd.num_negatives;
      options.temperature = config_.crd.temperature;
      options.momentum = config_.crd.momentum;
      crd_vector_ = heads_->register_module(
          "crd", CrdLoss(width(student_), width(teacher_), classes, options));
      break;
    }
    case Method::kCrdPostAttention:
    case Method::kCrdAttentionMap: {
      const bool maps = config_.method == Method::kCrdAttentionMap;
      CrdRowOptions options;
      options.crd.embed_dim = config_.crd.row_embed_dim;
      options.crd.num_negatives = config_.crd.row_negatives;
      options.crd.temperature = config_.crd.temperature;
      options.crd.momentum = config_.crd.momentum;
      options.memory_budget_bytes =
          static_cast<int64_t>(config_.crd.memory_budget_gib * (1LL << 30));
      for (size_t p = 0; p < pairing_->pairs.size(); ++p) {
        const auto& pair = pairing_->pairs[p];
        const auto s = map_shape(student_, pair.student);
        const auto t = map_shape(teacher_, pair.teacher);
        const int64_t s_dim = maps ? s[1] : student_->config().d_model;
        const int64_t t_dim = maps ? t[1] : teacher_->config().d_model;
        crd_rows_.emplace_back();
        for (int64_t l = 0; l < layers; ++l)
          crd_rows_.back().push_back(
              heads_->register_module("crd_pair" + std::to_string(p) + "_layer" + std::to_string(l),
                                      CrdRowLoss(s_dim, t_dim, s[0], classes, options)));
      }
      break;
    }
    case Method::kEdam:
      if (student_->config().proxy_mode != models::ProxyMode::kKeep) break;
      for (size_t p = 0; p < pairing_->pairs.size(); ++p) {
        const auto& pair = pairing_->pairs[p];
        const auto s = map_shape(student_, pair.student);
        const auto t = map_shape(teacher_, pair.teacher);
        upsamplers_.emplace_back();
        for (int64_t l = 0; l < layers; ++l)
          upsamplers_.back().push_back(
              heads_->register_module("up_pair" + std::to_string(p) + "_layer" + std::to_string(l),
                                      MapUpsampler(t[0], t[1], s[0], s[1])));
      }
      break;
    default:
      break;
  }
}

torch::Tensor DistillObjective::pair_layer_loss(const data::Batch& batch, size_t pair, size_t layer,
                                                const nn::LayerTaps& s, const nn::LayerTaps& t) {
  switch (config_.method) {
    case Method::kCrdPostAttention:
      return crd_rows_[pair][layer]->forward(s.post_attention, t.post_attention.detach(),
                                             batch.index, live_rows(s.map, t.map), generator_);
    case Method::kCrdAttentionMap:
      return crd_rows_[pair][layer]->forward(s.map, t.map.detach(), batch.index,
                                             live_rows(s.map, t.map), generator_);
    case Method::kEdam: {
      const torch::Tensor student_map = temperature_map(s.logits, config_.temperature);
      const torch::Tensor teacher_map = temperature_map(t.logits, config_.temperature).detach();
      if (upsamplers_.empty()) return edam_loss(student_map, teacher_map, config_.direction);
      return edam_upsampled_loss(student_map, teacher_map, upsamplers_[pair][layer],
                                 config_.direction);
    }
    default:
      MMKD_FAIL("pair_layer_loss: method ", method_name(config_.method));
  }
}

torch::Tensor DistillObjective::kd_loss(const data::Batch& batch,
                                        const models::ModelOutput& student,
                                        const models::ModelOutput& teacher) {
  switch (config_.method) {
    case Method::kNone:
      return {};
    case Method::kCrdFinal:
      return crd_vector_->forward(student.logits, teacher.logits.detach(), batch.index, generator_);
    case Method::kCrdPenultimate:
      return crd_vector_->forward(student.penultimate, teacher.penultimate.detach(), batch.index,
                                  generator_);
    case Method::kIdealMap: {
      const SequenceMasks masks = sequence_masks(student_, batch);
      std::vector<torch::Tensor> terms;
      for (const auto& pair : pairing_->pairs) {
        data::Modality q, k;
        MMKD_CHECK(pair_modalities(pair.student, q, k), "ideal_map: pair ", pair.student);
        const auto qi = data::modality_index(q), ki = data::modality_index(k);
        const auto& taps = student.taps.at(pair.student);
        const torch::Tensor& logits = taps.front().logits;
        const torch::Tensor future =
            student_->config().future_mask
                ? nn::future_mask(logits.size(2), logits.size(3), logits.options())
                : torch::Tensor();
        const torch::Tensor target =
            ideal_map(masks.events[qi], masks.events[ki], masks.padding[ki], future);
        for (const auto& layer : taps)
          terms.push_back(edam_loss(temperature_map(layer.logits, config_.temperature), target,
                                    config_.direction));
      }
      return mean_of(terms);
    }
    default:
      break;
  }
  std::vector<torch::Tensor> pair_terms;
  for (size_t p = 0; p < pairing_->pairs.size(); ++p) {
    const auto& s = student.taps.at(pairing_->pairs[p].student);
    const auto& t = teacher.taps.at(pairing_->pairs[p].teacher);
    std::vector<torch::Tensor> layer_terms;
    for (size_t l = 0; l < s.size(); ++l)
      layer_terms.push_back(pair_layer_loss(batch, p, l, s[l], t[l]));
    pair_terms.push_back(mean_of(layer_terms));
  }
  return mean_of(pair_terms);
}

train::LossParts DistillObjective::compute(const data::Batch& batch,
                                           const models::ModelOutput& output, bool /*training*/) {
  train::LossParts parts;
  parts.task = train::task_loss(student_->config(), output.logits, batch);
  models::ModelOutput teacher_output;
  if (config_.method != Method::kNone && config_.method != Method::kIdealMap) {
    torch::NoGradGuard no_grad;
    teacher_output =
        teacher_->forward(models::ModelInputs{batch.features, batch.padding}, teacher_taps_);
  }
  parts.kd = kd_loss(batch, output, teacher_output);
  parts.total = config_.alpha * parts.task;
  if (parts.kd.defined()) parts.total = parts.total + config_.beta * parts.kd;
  return parts;
}

void DistillObjective::save(torch::serialize::OutputArchive& archive) const {
  heads_->save(archive);
  std::lock_guard<std::mutex> lock(generator_.mutex());
  archive.write("crd_generator", generator_.get_state(), /*is_buffer=*/true);
}

void DistillObjective::load(torch::serialize::InputArchive& archive) {
  heads_->load(archive);
  torch::Tensor state;
  archive.read("crd_generator", state, /*is_buffer=*/true);
  std::lock_guard<std::mutex> lock(generator_.mutex());
  generator_.set_state(state);
}

void DistillObjective::to(const torch::Device& device) {
  heads_->to(device);
  teacher_->to(device);
}

std::string DistillObjective::name() const {
  std::string text = method_name(config_.method);
  if (config_.method == Method::kEdam)
    text += student_->config().proxy_mode == models::ProxyMode::kKeep ? "-up" : "-down";
  return text;
}

}  // namespace mmkd::distill
