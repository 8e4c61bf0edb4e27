#include "mmkd/report/attention_figure.h"

#include <iomanip>
#include <optional>
#include <sstream>

#include "mmkd/core/error.h"
#include "mmkd/data/batch_loader.h"
#include "mmkd/distill/distill_run.h"
#include "mmkd/distill/event_geometry.h"
#include "mmkd/distill/event_mass.h"
#include "mmkd/models/pairing.h"
#include "mmkd/nn/transformer_encoder.h"
#include "mmkd/report/heatmap.h"
#include "mmkd/train/checkpoint.h"
#include "mmkd/train/run.h"

namespace mmkd::report {

namespace {

struct Network {
  std::string label;
  models::MultimodalNet model{nullptr};
  std::string transformer;  ///< the transformer whose maps are drawn
};

/// The student transformer distilled from teacher transformer `pair` in the student's
/// configuration.
std::string student_transformer(const models::MultimodalNet& student, const std::string& pair,
                                const std::string& path) {
  MMKD_CHECK(student->config().role == models::Role::kStudent, path,
             ": holds a teacher; --student and --baseline take student runs");
  const auto& pairing = models::pairing_for_student(student->config().student_arch);
  std::string known;
  for (const auto& p : pairing.pairs) {
    if (p.teacher == pair) return p.student;
    known += (known.empty() ? "" : ", ") + p.teacher;
  }
  MMKD_FAIL("--pair ", pair, ": configuration ", pairing.id, " distils only ", known);
}

/// One layer's head-averaged map [Tq, Tk] of one sample, the sample's event steps on both axes
/// (when the data marks them) and the map's event mass.
struct LayerMap {
  torch::Tensor map;
  std::vector<bool> query_events, key_events;
  std::optional<distill::EventMass> mass;
};

std::vector<bool> to_bools(const torch::Tensor& mask) {
  const torch::Tensor m = mask.to(torch::kCPU, torch::kBool).contiguous();
  return std::vector<bool>(m.data_ptr<bool>(), m.data_ptr<bool>() + m.numel());
}

std::vector<LayerMap> maps_of(Network& net, const data::Split& split, int64_t sample,
                              const std::vector<int64_t>& layers) {
  torch::NoGradGuard no_grad;
  net.model->eval();
  data::BatchLoaderOptions one;
  one.batch_size = 1;
  one.shuffle = false;
  const data::Batch batch = data::BatchLoader(split, one).batch(sample);
  models::TapRequest request;
  request.what.map = true;
  request.transformers = {net.transformer};
  const models::ModelOutput out =
      net.model->forward(models::ModelInputs{batch.features, batch.padding}, request);
  const auto& taps = out.taps.at(net.transformer);
  std::optional<distill::SequenceMasks> masks;
  const auto& transformer = net.model->geometry().transformer(net.transformer);
  if (split.has_events()) masks = distill::sequence_masks(net.model, batch);
  std::vector<LayerMap> maps;
  for (const int64_t layer : layers) {
    MMKD_CHECK(layer >= 1 && layer <= static_cast<int64_t>(taps.size()), "--layers: ", net.label,
               "'s ", net.transformer, " has layers 1..", taps.size(), ", not ", layer);
    const torch::Tensor& map = taps[static_cast<size_t>(layer - 1)].map;
    LayerMap entry{map[0], {}, {}, std::nullopt};
    if (masks) {
      const auto q = data::modality_index(transformer.query);
      const auto k = data::modality_index(transformer.key);
      entry.query_events = to_bools(masks->events[q][0]);
      entry.key_events = to_bools(masks->events[k][0]);
      const torch::Tensor future = net.model->config().future_mask
                                       ? nn::future_mask(map.size(1), map.size(2), map.options())
                                       : torch::Tensor();
      entry.mass =
          distill::event_mass(map, masks->events[q], masks->events[k], masks->padding[k], future);
    }
    maps.push_back(std::move(entry));
  }
  return maps;
}

}  // namespace

std::string write_attention_figure(const AttentionFigureOptions& options) {
  train::CheckpointInfo info;
  std::vector<Network> nets;
  nets.push_back(
      {"teacher",
       train::load_model(distill::teacher_checkpoint(options.teacher), torch::kCPU, &info),
       options.pair});
  MMKD_CHECK(nets[0].model->config().role == models::Role::kTeacher, options.teacher,
             ": --teacher must be a teacher run");
  const auto add_student = [&](const std::string& path, const std::string& label) {
    Network net{label, train::load_model(distill::teacher_checkpoint(path), torch::kCPU), ""};
    net.transformer = student_transformer(net.model, options.pair, path);
    nets.push_back(std::move(net));
  };
  add_student(options.student, "student (distilled)");
  if (!options.baseline.empty()) add_student(options.baseline, "student (alone)");

  const data::MoseiData data = train::load_checkpoint_data(info);
  const data::Split& split = data.split(options.split);
  MMKD_CHECK(options.sample >= 0 && options.sample < split.size(), "--sample ", options.sample,
             ": split '", options.split, "' has samples 0..", split.size() - 1);

  std::vector<std::vector<LayerMap>> maps;
  for (auto& net : nets) maps.push_back(maps_of(net, split, options.sample, options.layers));
  std::vector<HeatmapPanel> panels;
  for (size_t l = 0; l < options.layers.size(); ++l) {
    for (size_t n = 0; n < nets.size(); ++n) {
      HeatmapPanel panel;
      panel.title =
          nets[n].label + " " + nets[n].transformer + " layer " + std::to_string(options.layers[l]);
      const LayerMap& layer = maps[n][l];
      panel.values = layer.map;
      panel.row_label = "query step";
      panel.column_label = "key step";
      panel.row_marks = layer.query_events;
      panel.column_marks = layer.key_events;
      if (layer.mass && layer.mass->rows > 0) {
        std::ostringstream mass;
        mass << std::fixed << std::setprecision(2) << ", event mass " << layer.mass->mass << " (x"
             << layer.mass->lift() << ")";
        panel.title += mass.str();
      }
      panels.push_back(std::move(panel));
    }
  }
  FigureOptions figure;
  figure.columns = static_cast<int64_t>(nets.size());
  figure.title = "Attention maps, " + options.split + " sample " + std::to_string(options.sample) +
                 " (teacher " + options.pair + ", head-averaged; red: event steps)";
  write_heatmaps(panels, figure, options.out);
  std::ostringstream what;
  what << options.out << ": " << options.pair << " layers";
  for (const auto l : options.layers) what << " " << l;
  what << " of the teacher and " << (nets.size() - 1) << " student(s), " << options.split
       << " sample " << options.sample;
  return what.str();
}

void write_confusion_figure(const train::RunMetrics& metrics, const std::string& title,
                            const std::string& out) {
  const auto rows = metrics.confusion();
  MMKD_CHECK(
      rows && !rows->empty(), out,
      ": the run's metrics.json has no test confusion matrix (test.classification.confusion)");
  const auto n = static_cast<int64_t>(rows->size());
  torch::Tensor counts = torch::zeros({n, n}, torch::kDouble);
  for (int64_t r = 0; r < n; ++r) {
    MMKD_CHECK(static_cast<int64_t>((*rows)[r].size()) == n, out,
               ": the confusion matrix is not square");
    for (int64_t c = 0; c < n; ++c) counts[r][c] = (*rows)[r][c];
  }
  HeatmapPanel panel;
  panel.title = title;
  panel.values = counts;
  panel.row_label = "true class";
  panel.column_label = "predicted class";
  panel.annotate = true;
  for (int64_t i = 0; i < n; ++i) panel.tick_labels.push_back(std::to_string(i - (n - 1) / 2));
  FigureOptions figure;
  figure.columns = 1;
  figure.panel_size = 280;
  figure.title = title;
  write_heatmaps({panel}, figure, out);
}

}  // namespace mmkd::report
