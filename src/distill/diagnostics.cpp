#include "mmkd/distill/diagnostics.h"

#include <iomanip>
#include <sstream>

#include "mmkd/data/batch_loader.h"
#include "mmkd/distill/event_geometry.h"
#include "mmkd/models/architecture.h"
#include "mmkd/nn/transformer_encoder.h"

namespace mmkd::distill {

std::vector<TransformerEventMass> split_event_mass(models::MultimodalNet& model,
                                                   const data::Split& split,
                                                   const std::vector<std::string>& transformers,
                                                   const torch::Device& device,
                                                   int64_t max_samples) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  std::vector<TransformerEventMass> result;
  for (const auto& name : transformers) result.push_back({name, {}});
  data::BatchLoaderOptions options;
  options.batch_size = 128;
  options.shuffle = false;
  data::BatchLoader loader(split, options);
  models::TapRequest request;
  request.what.map = true;
  request.transformers = transformers;
  int64_t seen = 0;
  for (int64_t b = 0; b < loader.num_batches() && seen < max_samples; ++b) {
    const data::Batch batch = loader.batch(b).to(device);
    seen += batch.size();
    const models::ModelOutput out =
        model->forward(models::ModelInputs{batch.features, batch.padding}, request);
    const SequenceMasks masks = sequence_masks(model, batch);
    for (auto& entry : result) {
      const auto& transformer = model->geometry().transformer(entry.transformer);
      const auto q = data::modality_index(transformer.query);
      const auto k = data::modality_index(transformer.key);
      for (const auto& layer : out.taps.at(entry.transformer)) {
        const torch::Tensor future =
            model->config().future_mask
                ? nn::future_mask(layer.map.size(1), layer.map.size(2), layer.map.options())
                : torch::Tensor();
        entry.mass.add(
            event_mass(layer.map, masks.events[q], masks.events[k], masks.padding[k], future));
      }
    }
  }
  if (was_training) model->train();
  return result;
}

std::vector<std::string> cross_modal_transformers(const models::MultimodalNet& model) {
  std::vector<std::string> names;
  for (const auto& t : model->geometry().transformers)
    if (!t.memory) names.push_back(t.name);
  return names;
}

std::string describe(const std::vector<TransformerEventMass>& masses) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(3);
  for (size_t i = 0; i < masses.size(); ++i) {
    const auto& m = masses[i].mass;
    out << (i ? ", " : "") << masses[i].transformer << " " << m.mass << " (chance " << m.chance
        << ", x" << std::setprecision(2) << m.lift() << std::setprecision(3) << ")";
  }
  return out.str();
}

nlohmann::json to_json(const std::vector<TransformerEventMass>& masses) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& entry : masses)
    j[entry.transformer] = {{"mass", entry.mass.mass},
                            {"chance", entry.mass.chance},
                            {"lift", entry.mass.lift()},
                            {"rows", entry.mass.rows}};
  return j;
}

}  // namespace mmkd::distill
