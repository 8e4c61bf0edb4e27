// Attention diagnostics over a split: the event mass of a network's maps per transformer, against
// its chance level (SPEC §3) — whether a teacher's maps carry anything to distill, and whether a
// student's maps moved toward them.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmkd/data/mosei_data.h"
#include "mmkd/distill/event_mass.h"
#include "mmkd/models/multimodal_net.h"

namespace mmkd::distill {

struct TransformerEventMass {
  std::string transformer;  ///< e.g. "V<-A"
  EventMass mass;           ///< over every layer and every counted row
};

/// Event mass of `transformers` of `model` on the first `max_samples` samples of `split` (which
/// must hold events), in eval mode without gradients.
std::vector<TransformerEventMass> split_event_mass(models::MultimodalNet& model,
                                                   const data::Split& split,
                                                   const std::vector<std::string>& transformers,
                                                   const torch::Device& device,
                                                   int64_t max_samples = 512);

/// Every transformer of `model` whose maps relate two sequences ("K<-Q"; memories excluded).
std::vector<std::string> cross_modal_transformers(const models::MultimodalNet& model);

/// "V<-A 0.412 (chance 0.221, x1.86)" for each transformer, joined by ", ".
std::string describe(const std::vector<TransformerEventMass>& masses);

nlohmann::json to_json(const std::vector<TransformerEventMass>& masses);

}  // namespace mmkd::distill
