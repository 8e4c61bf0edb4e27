// The ideal-map control (SPEC §3): EDAM toward maps uniform over the true event steps, the upper
// bound of what attention-map distillation can give. Needs data that records events; no teacher.
#include "mmkd/distill/edam.h"
#include "mmkd/distill/event_geometry.h"
#include "mmkd/distill/event_mass.h"
#include "mmkd/nn/transformer_encoder.h"
#include "term_util.h"

namespace mmkd::distill {

namespace {

class IdealMapTerm : public KdTerm {
 public:
  IdealMapTerm(const TermSpec& spec, KdTermContext& context)
      : temperature_(terms::option<double>(spec, "temperature", 1.0)),
        direction_(terms::edam_direction(spec)),
        student_(context.student),
        pairs_(context.pairs) {
    MMKD_CHECK(context.has_events,
               "method ideal_map distils maps uniform over the true event steps, but the data has "
               "no 'events' key (only the built-in synthetic data records them)");
    MMKD_CHECK(temperature_ > 0, "config key '", join_key(spec.path, "temperature"),
               "': must be > 0, got ", temperature_);
  }

  nn::TapRequest taps() const override { return terms::logit_taps(); }
  bool needs_teacher() const override { return false; }
  bool taps_teacher() const override { return false; }

  torch::Tensor loss(const KdTermInputs& in) override {
    const SequenceMasks masks = sequence_masks(student_, in.batch);
    // One mean over every (pair, layer): all pairs' layers share the masks of the same batch.
    std::vector<torch::Tensor> terms;
    for (const auto& pair : pairs_) {
      const auto& transformer = student_->geometry().transformer(pair.student);
      const auto qi = data::modality_index(transformer.query);
      const auto ki = data::modality_index(transformer.key);
      const auto& taps = in.student.taps.at(pair.student);
      const torch::Tensor& logits = taps.front().logits;
      const torch::Tensor future =
          student_->config().future_mask
              ? nn::future_mask(logits.size(2), logits.size(3), logits.options())
              : torch::Tensor();
      const torch::Tensor target =
          ideal_map(masks.events[qi], masks.events[ki], masks.padding[ki], future);
      for (const auto& layer : taps)
        terms.push_back(edam_loss(temperature_map(layer.logits, temperature_), target, direction_));
    }
    return terms::mean_of(terms);
  }

  std::string name() const override { return "ideal_map"; }

 private:
  double temperature_;
  EdamDirection direction_;
  models::MultimodalNet student_;
  std::vector<models::DistillPair> pairs_;
};

}  // namespace

MMKD_KD_TERM(ideal_map_term) {
  registry.add({"ideal_map",
                "EDAM toward maps uniform over the true event steps (synthetic data only): the "
                "control that bounds what map distillation can give",
                {"temperature", "direction"},
                "",
                [](const TermSpec& spec, KdTermContext& context) {
                  return std::make_unique<IdealMapTerm>(spec, context);
                }});
}

}  // namespace mmkd::distill
