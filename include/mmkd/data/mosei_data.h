// In-memory CMU-MOSEI-style data: three splits of three feature sequences plus labels.
#pragma once

#include <torch/torch.h>

#include <array>
#include <map>
#include <string>
#include <vector>

#include "mmkd/data/modality.h"

namespace mmkd::data {

/// One split (train / valid / test) as MulT's pickle holds it, normalised:
/// features are float32 [N, T_m, F_m], labels float32 [N] (sentiment in [-3, 3]).
struct Split {
  std::array<torch::Tensor, 3> features;  ///< indexed by modality_index(); float32 [N,T,F]
  torch::Tensor labels;                   ///< float32 [N], continuous sentiment in [-3, 3]
  std::vector<std::string> ids;           ///< optional sample ids (empty when absent)
  /// Optional ground truth of the synthetic generator: bool [N, T_m], true at steps that belong
  /// to a real (label-carrying) expression event. Undefined tensors when the file has none.
  std::array<torch::Tensor, 3> events;

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  const torch::Tensor& feature(Modality m) const { return features[modality_index(m)]; }
  const torch::Tensor& event(Modality m) const { return events[modality_index(m)]; }
  bool has_events() const { return events[0].defined(); }
};

/// How many non-finite feature values were replaced by 0 on load, per split and modality.
struct CleanReport {
  std::map<std::string, std::array<int64_t, 3>> replaced;  ///< split -> counts per modality
  int64_t total() const;
};

/// The splits of one data file ("train", "valid", "test") and where they came from.
struct MoseiData {
  std::map<std::string, Split> splits;
  std::string source;  ///< path the data was read from, or "synthetic:<preset>"
  std::string layout;  ///< "mult" (labels [N,1,1]) or "mmsa" (regression_labels [N])
  CleanReport cleaned;
  /// dtype of each array as stored in the file, e.g. "train/vision" -> "float64" (for inspect).
  std::map<std::string, std::string> source_dtypes;

  /// The split named `name`; throws mmkd::Error naming the source and the available splits.
  const Split& split(const std::string& name) const;
};

inline constexpr std::array<const char*, 3> kSplitNames = {"train", "valid", "test"};

}  // namespace mmkd::data
