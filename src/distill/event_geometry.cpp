#include "mmkd/distill/event_geometry.h"

#include "mmkd/core/error.h"
#include "mmkd/distill/event_mass.h"
#include "mmkd/models/student.h"

namespace mmkd::distill {

namespace {
data::Modality from_letter(char letter) {
  switch (letter) {
    case 'V':
      return data::Modality::kVideo;
    case 'A':
      return data::Modality::kAudio;
    case 'L':
      return data::Modality::kText;
  }
  MMKD_FAIL("transformer name: unknown modality letter '", letter, "'");
}
}  // namespace

bool pair_modalities(const std::string& name, data::Modality& query, data::Modality& key) {
  if (name.size() == 5 && name.compare(0, 4, "mem:") == 0) {
    // A branch memory attends over its own (concatenated) sequence.
    query = key = from_letter(name[4]);
    return true;
  }
  if (name.size() != 4 || name.compare(1, 2, "<-") != 0) return false;
  key = from_letter(name[0]);
  query = from_letter(name[3]);
  return true;
}

std::array<int64_t, 2> map_shape(const models::MultimodalNet& model, const std::string& name) {
  data::Modality query, key;
  MMKD_CHECK(pair_modalities(name, query, key), "'", name,
             "' is not a transformer name of the form K<-Q or mem:Q");
  const auto lengths = model->projected_lengths(model->input_shape());
  return {lengths[data::modality_index(query)], lengths[data::modality_index(key)]};
}

int64_t penultimate_dim(const models::MultimodalNet& model) {
  for (const auto& row : model->sequence_table())
    if (row.tensor == "penultimate h'") return row.shape.back();
  MMKD_FAIL("the network reports no penultimate vector");
}

SequenceMasks sequence_masks(const models::MultimodalNet& model, const data::Batch& batch) {
  MMKD_CHECK(batch.events[0].defined(), "attention diagnostics need the data's 'events' key");
  SequenceMasks masks;
  if (model->config().role == models::Role::kTeacher) {
    masks.events = batch.events;
    masks.padding = batch.padding;
    return masks;
  }
  // The student's proxies are Conv1D windows over the video: a proxy step is an event when its
  // window touches an event, and padding when its whole window is padding.
  const auto v = data::modality_index(data::Modality::kVideo);
  const auto geometries = models::proxy_geometries(model->config(), model->input_shape());
  const auto lengths = model->projected_lengths(model->input_shape());
  const torch::Tensor real = ~batch.padding[v];
  for (size_t m = 0; m < 3; ++m) {
    const auto& g = geometries[m];
    masks.events[m] = downsample_events(batch.events[v], g.kernel, g.stride, lengths[m], g.padding);
    masks.padding[m] = ~downsample_events(real, g.kernel, g.stride, lengths[m], g.padding);
  }
  return masks;
}

}  // namespace mmkd::distill
