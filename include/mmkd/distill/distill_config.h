// The `distill:` section of a run config: which teacher, which configuration, the weight of the
// task loss and the list of KD terms (Loss = alpha * L_c + Σ_i weight_i * L_i).
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "mmkd/distill/kd_term.h"

namespace mmkd::distill {

struct DistillConfig {
  std::string teacher;    ///< run directory (its best.pt) or checkpoint file
  int configuration = 0;  ///< 1..5 (paper §4.2); 0 = the one whose student is model.architecture
  double alpha = 1.0;     ///< weight of L_c
  std::vector<TermSpec> terms;  ///< the KD terms; empty = the student alone (method: none)
  /// Warn when the teacher's event mass is below this multiple of chance (maps near chance carry
  /// nothing to distill).
  double chance_warning_lift = 1.2;
  /// Host memory for the teacher's outputs on the training split, computed once per run instead
  /// of once per batch and epoch (teacher_cache.h); 0 = no cache. Above it the run says so and
  /// computes the teacher per batch.
  int64_t teacher_cache_mb = 4096;

  void validate(const std::string& path = "distill") const;
};

/// Reads either form. The list form:
///   distill: {alpha: 1, terms: [{method: crd, level: penultimate, weight: 0.8},
///                               {method: edam, pairs: ["V<-A"], temperature: 2}]}
/// The single-method form of the paper's configs (`method`, `beta`, `temperature`, `direction`,
/// `crd:`) is one term of weight beta (`method: none`: no term).
DistillConfig parse_distill_config(const YAML::Node& node, const std::string& path = "distill");

}  // namespace mmkd::distill
