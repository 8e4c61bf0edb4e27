#include "mmkd/distill/event_geometry.h"

#include "mmkd/core/error.h"
#include "mmkd/distill/event_mass.h"

namespace mmkd::distill {

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
  const torch::Tensor real = ~batch.padding[v];
  for (size_t m = 0; m < 3; ++m) {
    const auto& p = model->geometry().sequences[m];
    const auto& g = p.conv;
    masks.events[m] = downsample_events(batch.events[v], g.kernel, g.stride, p.length, g.padding);
    masks.padding[m] = ~downsample_events(real, g.kernel, g.stride, p.length, g.padding);
  }
  return masks;
}

}  // namespace mmkd::distill
