// The distillation objective: Loss = alpha * L_c + Σ_i weight_i * L_i, the L_i from the KD terms
// of the config (kd_term.h) against a frozen teacher, each averaged over its pairs.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "mmkd/data/mosei_data.h"
#include "mmkd/distill/distill_config.h"
#include "mmkd/distill/kd_term.h"
#include "mmkd/distill/teacher_cache.h"
#include "mmkd/models/multimodal_net.h"
#include "mmkd/models/pairing.h"
#include "mmkd/train/objective.h"

namespace mmkd::distill {

/// Resolves the paper configuration of a run: `config.configuration`, or the one whose student
/// is `student` (errors name the mismatch).
const models::PairingConfig& resolve_pairing(const DistillConfig& config,
                                             const models::ModelConfig& student);

/// Freezes a teacher: eval mode, no parameter requires a gradient.
void freeze(models::MultimodalNet& teacher);

class DistillObjective : public train::Objective {
 public:
  /// `student` fixes the shapes of heads; `train` gives the sample classes CRD draws negatives
  /// from; `seed` fixes CRD's negative sampling (its own stream, not the training one).
  DistillObjective(DistillConfig config, models::MultimodalNet student,
                   models::MultimodalNet teacher, const data::Split& train, uint64_t seed);

  models::TapRequest taps() const override { return student_taps_; }
  train::LossParts compute(const data::Batch& batch, const models::ModelOutput& output,
                           bool training) override;
  std::vector<torch::Tensor> parameters() override { return heads_->parameters(); }
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
  void to(const torch::Device& device) override;
  void set_training(bool on) override { heads_->train(on); }
  std::string name() const override;

  const models::PairingConfig& pairing() const { return *pairing_; }
  const DistillConfig& config() const { return config_; }
  models::MultimodalNet teacher() const { return teacher_; }

  /// Serves the teacher's outputs for training batches of `train` (which must outlive this
  /// objective) from a TeacherCache, built on the first training batch within `budget_bytes`.
  /// Validation batches still run the teacher. Not for CUDA-graphed steps: a graph cannot
  /// capture the host-side lookup.
  void use_teacher_cache(const data::Split& train, int64_t budget_bytes);
  /// The cache in use; nullptr before the first training batch, or when declined or not asked.
  const TeacherCache* teacher_cache() const { return cache_.get(); }

  /// Σ_i weight_i * L_i for a batch given both networks' outputs (undefined without terms).
  torch::Tensor kd_loss(const data::Batch& batch, const models::ModelOutput& student,
                        const models::ModelOutput& teacher);

 private:
  std::vector<models::DistillPair> term_pairs(const TermSpec& spec) const;
  models::ModelOutput teacher_output(const data::Batch& batch, bool training);
  void build_teacher_cache(const torch::Device& device);

  DistillConfig config_;
  const models::PairingConfig* pairing_;
  models::MultimodalNet student_;
  models::MultimodalNet teacher_;
  models::TapRequest student_taps_, teacher_taps_;
  bool needs_teacher_ = false;
  std::shared_ptr<torch::nn::Module> heads_;  // every term's learned heads and banks
  std::vector<std::unique_ptr<KdTerm>> terms_;
  mutable at::Generator generator_;           // CRD negative sampling
  const data::Split* cache_split_ = nullptr;  // set by use_teacher_cache until the cache is built
  int64_t cache_budget_bytes_ = 0;
  std::unique_ptr<TeacherCache> cache_;
};

}  // namespace mmkd::distill
