// Pieces the KD terms share: reading a term's own keys, and the mean over pairs and layers.
#pragma once

#include <torch/torch.h>

#include <array>
#include <functional>
#include <string>
#include <vector>

#include "mmkd/core/error.h"
#include "mmkd/core/yaml_config.h"
#include "mmkd/distill/edam.h"
#include "mmkd/distill/kd_term.h"

namespace mmkd::distill::terms {

/// The term's key `key`, or `fallback` when the config does not set it.
template <typename T>
T option(const TermSpec& spec, const char* key, T fallback) {
  read_optional(spec.options, key, spec.path, fallback);
  return fallback;
}

inline torch::Tensor mean_of(const std::vector<torch::Tensor>& terms) {
  return torch::stack(terms).mean();
}

/// Mean over the term's pairs of the mean over layers of `layer_loss(pair, layer, student
/// taps, teacher taps)` (the paper's eq. 12 averaging; teacher taps are empty when the term
/// taps only the student). A layer whose loss is undefined is left out of its pair's mean.
inline torch::Tensor pair_layer_mean(
    const KdTermInputs& in, const std::vector<models::DistillPair>& pairs,
    const std::function<torch::Tensor(size_t, size_t, const nn::LayerTaps&, const nn::LayerTaps*)>&
        layer_loss) {
  std::vector<torch::Tensor> pair_terms;
  for (size_t p = 0; p < pairs.size(); ++p) {
    const auto& s = in.student.taps.at(pairs[p].student);
    const nn::EncoderTaps* t =
        in.teacher.taps.count(pairs[p].teacher) ? &in.teacher.taps.at(pairs[p].teacher) : nullptr;
    std::vector<torch::Tensor> layer_terms;
    for (size_t l = 0; l < s.size(); ++l) {
      torch::Tensor term = layer_loss(p, l, s[l], t != nullptr ? &(*t)[l] : nullptr);
      if (term.defined()) layer_terms.push_back(term);  // undefined: the term skips this layer
    }
    pair_terms.push_back(mean_of(layer_terms));
  }
  return mean_of(pair_terms);
}

/// The term's `direction` key (EDAM's cross-entropy direction; teacher_log_student by default).
EdamDirection edam_direction(const TermSpec& spec);

/// The scaled attention logits of every layer, per head.
inline nn::TapRequest logit_taps() {
  nn::TapRequest what;
  what.logits = true;
  return what;
}

/// Mean over pairs and layers (the last layer only with `last_only`) of `per_head(student
/// logits, teacher logits)`, the teacher's detached: the per-head attention terms.
inline torch::Tensor headwise_layer_mean(
    const KdTermInputs& in, const std::vector<models::DistillPair>& pairs, bool last_only,
    const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& per_head) {
  return pair_layer_mean(
      in, pairs, [&](size_t p, size_t layer, const nn::LayerTaps& s, const nn::LayerTaps* t) {
        const size_t layers = in.student.taps.at(pairs[p].student).size();
        if (last_only && layer + 1 != layers) return torch::Tensor();
        return per_head(s.logits, t->logits.detach());
      });
}

/// The `layers` key of the per-head attention terms (last | all): true = the last layer only.
bool last_layer_only(const TermSpec& spec, const std::string& fallback);

/// Refuses per-head attention terms whose networks differ in depth, map shapes or head count.
void check_headwise(const KdTermContext& context, const std::string& method);

/// Refuses layer-wise terms whose networks differ in depth.
void check_same_layers(const KdTermContext& context, const std::string& method);

/// Refuses map terms whose student and teacher maps differ in shape (EDAM-S↓ proxies fix that).
void check_same_map_shapes(const KdTermContext& context, const std::string& method);

}  // namespace mmkd::distill::terms
