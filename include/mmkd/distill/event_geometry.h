// Which steps of a network's three sequences are event steps and padding: the teacher's follow
// the data; the student's proxies are strided windows over the video.
#pragma once

#include <torch/torch.h>

#include <array>
#include <string>

#include "mmkd/data/batch.h"
#include "mmkd/models/multimodal_net.h"

namespace mmkd::distill {

/// Event and padding masks of the sequences a network's transformers see, indexed by modality
/// (V, A, L for the teacher; V_S, A_S, L_S for the student).
struct SequenceMasks {
  std::array<torch::Tensor, 3> events;   ///< bool [B, T_m]
  std::array<torch::Tensor, 3> padding;  ///< bool [B, T_m], true = padded
};

/// The masks of `model`'s projected sequences for `batch` (which must hold events).
SequenceMasks sequence_masks(const models::MultimodalNet& model, const data::Batch& batch);

}  // namespace mmkd::distill
