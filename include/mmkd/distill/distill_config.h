// The `distill:` section of a run config: which teacher, which configuration, which level and
// method, and the loss weights (Loss = alpha * L_c + beta * L_KD).
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "mmkd/distill/edam.h"

namespace mmkd::distill {

/// Where and how knowledge is distilled (paper §4.3), plus the ideal-map control (SPEC §3).
enum class Method {
  kNone,              ///< the student alone (L_KD = 0)
  kCrdFinal,          ///< CRD on the logits
  kCrdPenultimate,    ///< CRD on the vector entering the output layer
  kCrdPostAttention,  ///< CRD on post-attention outputs, every row of every layer (eqs. 3-7)
  kCrdAttentionMap,   ///< CRD on head-averaged attention maps, every row of every layer (eqs. 8-9)
  kEdam,              ///< cross-entropy on temperature attention maps (eqs. 10-13); S↓ or T↑
                      ///< follows the student's proxy_mode (downsample / keep)
  kIdealMap,          ///< EDAM toward maps uniform over the true event steps (needs `events`)
};

struct CrdSettings {
  int64_t embed_dim = 128;         ///< embedding size of the CRD heads (vector levels)
  int64_t num_negatives = 16384;   ///< K for vector levels (capped by the training set)
  int64_t row_embed_dim = 32;      ///< embedding size for the per-row levels
  int64_t row_negatives = 256;     ///< K for the per-row levels
  double temperature = 0.07;       ///< NCE temperature
  double momentum = 0.5;           ///< memory-bank momentum
  double memory_budget_gib = 4.0;  ///< refuse per-row banks larger than this
};

struct DistillConfig {
  std::string teacher;    ///< run directory (its best.pt) or checkpoint file
  int configuration = 0;  ///< 1..5 (paper §4.2); 0 = the one whose student is model.architecture
  Method method = Method::kEdam;
  double alpha = 1.0;                                           ///< weight of L_c
  double beta = 1.0;                                            ///< weight of L_KD
  double temperature = 1.0;                                     ///< EDAM softmax temperature t
  EdamDirection direction = EdamDirection::kTeacherLogStudent;  ///< EDAM cross-entropy direction
  CrdSettings crd;
  /// Warn when the teacher's event mass is below this multiple of chance (maps near chance carry
  /// nothing to distill).
  double chance_warning_lift = 1.2;

  void validate(const std::string& path = "distill") const;
};

DistillConfig parse_distill_config(const YAML::Node& node, const std::string& path = "distill");
YAML::Node to_yaml(const DistillConfig& config);

std::string method_name(Method method);  ///< none, crd_final, ..., edam, ideal_map
Method parse_method(const std::string& name, const std::string& key);

/// Whether a method distils attention maps (and so needs equal or upsampled map shapes).
bool uses_attention_maps(Method method);

}  // namespace mmkd::distill
