#include "mmkd/distill/distill_objective.h"

#include <chrono>
#include <iomanip>
#include <set>
#include <sstream>

#include "mmkd/core/error.h"
#include "mmkd/core/rng_guard.h"
#include "mmkd/dist/process_group.h"
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

nn::TapRequest merged(nn::TapRequest a, const nn::TapRequest& b) {
  a.logits = a.logits || b.logits;
  a.map = a.map || b.map;
  a.post_attention = a.post_attention || b.post_attention;
  a.layer_output = a.layer_output || b.layer_output;
  return a;
}

}  // namespace

std::vector<models::DistillPair> DistillObjective::term_pairs(const TermSpec& spec) const {
  if (spec.pairs.empty()) return pairing_->pairs;
  std::string valid;
  for (const auto& pair : pairing_->pairs) valid += (valid.empty() ? "" : ", ") + pair.student;
  std::vector<models::DistillPair> pairs;
  for (const auto& pair : pairing_->pairs) {
    if (std::find(spec.pairs.begin(), spec.pairs.end(), pair.student) != spec.pairs.end())
      pairs.push_back(pair);
  }
  for (const auto& name : spec.pairs) {
    MMKD_CHECK(std::any_of(pairing_->pairs.begin(), pairing_->pairs.end(),
                           [&](const models::DistillPair& p) { return p.student == name; }),
               "config key '", spec.path, ".pairs': '", name, "' is not a pair of configuration ",
               pairing_->id, " (", pairing_->title, "); its pairs are ", valid);
  }
  return pairs;
}

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
  freeze(teacher_);
  RngStateGuard keep_training_stream;  // heads must not shift the student's dropout masks
  torch::manual_seed(seed + 1000003ULL);
  KdTermContext context;
  context.student = student_;
  context.teacher = teacher_;
  context.sample_classes = train::sentiment_to_class(train.labels);
  context.has_events = train.has_events();
  context.heads = heads_.get();
  std::set<std::string> student_names, teacher_names;
  nn::TapRequest student_what, teacher_what;
  for (size_t i = 0; i < config_.terms.size(); ++i) {
    const TermSpec& spec = config_.terms[i];
    context.pairs = term_pairs(spec);
    // The first term keeps the head names of single-method runs, so their checkpoints resume.
    context.head_prefix = i == 0 ? "" : "t" + std::to_string(i) + "_";
    terms_.push_back(kd_terms().resolve(spec.method, spec.path).make(spec, context));
    const KdTerm& term = *terms_.back();
    needs_teacher_ = needs_teacher_ || term.needs_teacher();
    if (!term.taps().any()) continue;
    student_what = merged(student_what, term.taps());
    for (const auto& pair : context.pairs) student_names.insert(pair.student);
    if (term.taps_teacher()) {
      teacher_what = merged(teacher_what, term.taps());
      for (const auto& pair : context.pairs) teacher_names.insert(pair.teacher);
    }
  }
  // Tapped in the pairing table's order (the order single-method runs used).
  const auto ordered = [&](const std::set<std::string>& names, bool student_side) {
    std::vector<std::string> list;
    for (const auto& pair : pairing_->pairs) {
      const std::string& name = student_side ? pair.student : pair.teacher;
      if (names.count(name) && std::find(list.begin(), list.end(), name) == list.end())
        list.push_back(name);
    }
    return list;
  };
  if (student_what.any()) student_taps_ = {student_what, ordered(student_names, true)};
  if (teacher_what.any()) teacher_taps_ = {teacher_what, ordered(teacher_names, false)};
}

torch::Tensor DistillObjective::kd_loss(const data::Batch& batch,
                                        const models::ModelOutput& student,
                                        const models::ModelOutput& teacher) {
  torch::Tensor total;
  const KdTermInputs inputs{batch, student, teacher, generator_};
  for (size_t i = 0; i < terms_.size(); ++i) {
    const torch::Tensor weighted = config_.terms[i].weight * terms_[i]->loss(inputs);
    total = total.defined() ? total + weighted : weighted;
  }
  return total;
}

train::LossParts DistillObjective::compute(const data::Batch& batch,
                                           const models::ModelOutput& output, bool training) {
  train::LossParts parts;
  parts.task = train::task_loss(student_->config(), output.logits, batch);
  models::ModelOutput teacher;
  if (needs_teacher_) teacher = teacher_output(batch, training);
  parts.kd = kd_loss(batch, output, teacher);
  parts.total = config_.alpha * parts.task;
  if (parts.kd.defined()) parts.total = parts.total + parts.kd;
  return parts;
}

models::ModelOutput DistillObjective::teacher_output(const data::Batch& batch, bool training) {
  const torch::Device device = batch.features[0].device();
  if (training && cache_split_) build_teacher_cache(device);
  if (training && cache_) return cache_->lookup(batch.index, device);
  torch::NoGradGuard no_grad;
  return teacher_->forward(models::ModelInputs{batch.features, batch.padding}, teacher_taps_);
}

void DistillObjective::use_teacher_cache(const data::Split& train, int64_t budget_bytes) {
  cache_.reset();
  cache_split_ = budget_bytes > 0 ? &train : nullptr;
  cache_budget_bytes_ = budget_bytes;
}

void DistillObjective::build_teacher_cache(const torch::Device& device) {
  const data::Split& split = *cache_split_;
  cache_split_ = nullptr;  // one attempt: a declined cache is not tried again every batch
  const auto start = std::chrono::steady_clock::now();
  std::string declined;
  cache_ = TeacherCache::build(teacher_, teacher_taps_, split, device, cache_budget_bytes_,
                               /*batch_size=*/64, &declined);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (cache_) {
    std::ostringstream line;
    line << std::fixed << std::setprecision(1) << "teacher cache: " << cache_->num_samples()
         << " training samples, " << cache_->bytes() / 1e6 << " MB, built in " << seconds << " s\n";
    dist::lead_log() << line.str();
  } else {
    dist::lead_log() << "teacher cache: off (" << declined
                     << "); the teacher runs on every batch\n";
  }
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
  if (terms_.empty()) return "none";
  std::string text;
  for (const auto& term : terms_) text += (text.empty() ? "" : "+") + term->name();
  return text;
}

}  // namespace mmkd::distill
