// The frequencies of fairseq's sinusoidal positions, shared by the encoder and the ONNX export
// (which computes the positions in the graph, for any length, from the same float32 values).
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace mmkd::nn {

/// float32 [dim/2]: exp(-i * log(10000) / (dim/2 - 1)), i = 0..dim/2-1 (the divisor clamped to 1
/// for dim < 4). Position p's embedding is [sin(p*f), cos(p*f)] (a zero appended when dim is odd).
torch::Tensor sinusoidal_frequencies(int64_t dim, const torch::TensorOptions& options = {});

}  // namespace mmkd::nn
