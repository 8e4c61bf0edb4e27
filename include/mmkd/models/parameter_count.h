// Closed-form parameter counts of MulT-style networks, to check the modules against MulT's numbers
// and the paper's (teacher 1,542,047 at d=40 with kernel 1; student (5) 675,655 at d=64).
#pragma once

#include <cstdint>

#include "mmkd/models/model_config.h"

namespace mmkd::models {

/// One encoder of width d: layers*(12d^2 + 13d) + 2d (per layer: in_proj 3d^2+3d, out_proj
/// d^2+d, fc1 4d^2+4d, fc2 4d^2+d, two LayerNorms 4d; plus the final LayerNorm).
constexpr int64_t encoder_parameter_count(int64_t d, int64_t layers) {
  return layers * (12 * d * d + 13 * d) + 2 * d;
}

/// MulT's head on a D-vector with `out` outputs: 2(D^2 + D) + D*out + out.
constexpr int64_t head_parameter_count(int64_t in, int64_t out) {
  return 2 * (in * in + in) + in * out + out;
}

/// Teacher/student without projections, from the architecture alone.
int64_t transformer_and_head_parameter_count(const ModelConfig& config);

/// Teacher projections: sum over modalities of dim*d*kernel (no bias).
int64_t teacher_projection_parameter_count(const ModelConfig& config, const InputShape& shape);

/// Whole teacher. Complete, 4 layers, 7 classes: 936d^2 + (k*(Fv+Fa+Fl) + 702)d + 7, i.e.
/// 936d^2 + 1111d + 7 for kernel 1 and 936d^2 + 1929d + 7 for kernel 3 with MOSEI's dims.
int64_t teacher_parameter_count(const ModelConfig& config, const InputShape& shape);

}  // namespace mmkd::models
