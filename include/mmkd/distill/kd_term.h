// One distillation loss term and the registry that names them. Each method is a KdTerm in a file
// of its own under src/distill/terms/ that registers itself (MMKD_KD_TERM); help texts, config
// validation and bench read the registry, so nothing else lists the methods (docs/extending.md).
#pragma once

#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mmkd/data/batch.h"
#include "mmkd/models/multimodal_net.h"
#include "mmkd/models/pairing.h"

namespace mmkd::distill {

/// One entry of `distill.terms`: the method, its weight, the pairs it distils and its own keys.
struct TermSpec {
  std::string method;              ///< a registered name (aliases already resolved)
  double weight = 1.0;             ///< Loss = alpha * L_c + Σ_i weight_i * L_i
  std::vector<std::string> pairs;  ///< student transformers of the pairing table; empty = all
  YAML::Node options;              ///< the term's own keys, checked by the term
  std::string path;                ///< config path for messages, e.g. "distill.terms[1]"
};

/// What a term is built from.
struct KdTermContext {
  models::MultimodalNet student{nullptr};
  models::MultimodalNet teacher{nullptr};
  std::vector<models::DistillPair> pairs;  ///< the term's pairs, in the pairing table's order
  torch::Tensor sample_classes;            ///< 7-class label of every training sample (CRD)
  bool has_events = false;                 ///< the training data records event steps
  torch::nn::Module* heads = nullptr;      ///< where a term registers learned heads
  std::string head_prefix;                 ///< "" for the first term, "t1_", ... after
};

/// What a term's loss sees for one batch.
struct KdTermInputs {
  const data::Batch& batch;
  const models::ModelOutput& student;
  const models::ModelOutput& teacher;  ///< empty when no term needs the teacher's forward
  at::Generator& generator;            ///< the objective's seeded stream (CRD negatives)
};

/// A distillation loss L_i between a student and a frozen teacher.
class KdTerm {
 public:
  virtual ~KdTerm() = default;
  /// Per-layer tensors the term reads from the pairs' transformers, in student and teacher.
  virtual nn::TapRequest taps() const { return {}; }
  /// Whether the teacher must run forward (false: the target is not the teacher's, e.g. ideal
  /// maps), and whether its pairs' transformers must be tapped.
  virtual bool needs_teacher() const { return true; }
  virtual bool taps_teacher() const { return taps().any(); }
  /// L_i of one batch (a scalar on the student's device, differentiable in the student).
  virtual torch::Tensor loss(const KdTermInputs& in) = 0;
  /// Short name for logs ("edam-down", "crd-penultimate", ...).
  virtual std::string name() const = 0;
};

/// A row of the study's extended grid (`mmkd study --extended`): its name and the overrides of
/// the student's config that make it.
struct StudyVariant {
  std::string name;                    ///< e.g. "edam_up"
  std::vector<std::string> overrides;  ///< e.g. {"distill.method=edam", "model.proxy_mode=keep"}
};

/// A registered method.
struct KdTermInfo {
  std::string name;               ///< what `method:` says
  std::string summary;            ///< one line for --help and docs
  std::vector<std::string> keys;  ///< its own config keys (besides method, weight, pairs)
  /// Where the single-method form kept its keys: "" = the top-level temperature and direction,
  /// "crd" = the crd: section.
  std::string legacy_section;
  std::function<std::unique_ptr<KdTerm>(const TermSpec&, KdTermContext&)> make;
  /// Its rows in the extended grid; empty = one row, `distill.method=<name>`.
  std::vector<StudyVariant> study_rows = {};
};

class KdTermRegistry {
 public:
  void add(KdTermInfo info);
  /// `alias` stands for `method` with some of its keys set (e.g. crd_final = crd, level: final).
  void add_alias(const std::string& alias, const std::string& method,
                 std::map<std::string, std::string> options);
  /// The method `name` names (an alias resolved into `options`); an error naming `key`, the
  /// closest registered name and every valid one otherwise.
  const KdTermInfo& resolve(const std::string& name, const std::string& key,
                            YAML::Node* options = nullptr) const;
  /// Registered names and aliases, sorted.
  std::vector<std::string> names(bool with_aliases = true) const;
  const std::vector<KdTermInfo>& methods() const { return methods_; }

 private:
  struct Alias {
    std::string method;
    std::map<std::string, std::string> options;
  };
  std::vector<KdTermInfo> methods_;
  std::map<std::string, Alias> aliases_;
};

/// Every method of src/distill/terms/, registered once.
const KdTermRegistry& kd_terms();

/// "a, b, c": the registry's names, for help texts.
std::string kd_term_list();

}  // namespace mmkd::distill

/// Opens a term file's registration function: MMKD_KD_TERM(edam) { registry.add({...}); }.
/// The build generates the call for every file of src/distill/terms/ (CMakeLists.txt), so a new
/// term needs no edit anywhere else; the argument must be the file's name.
#define MMKD_KD_TERM(stem) \
  void mmkd_register_kd_term_##stem(::mmkd::distill::KdTermRegistry& registry)
