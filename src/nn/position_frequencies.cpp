#include "mmkd/nn/position_frequencies.h"

#include <algorithm>
#include <cmath>

namespace mmkd::nn {

torch::Tensor sinusoidal_frequencies(int64_t dim, const torch::TensorOptions& options) {
  const int64_t half = dim / 2;
  // fairseq divides by (half - 1); guard the degenerate dim < 4 where that is 0.
  const double step = std::log(10000.0) / double(std::max<int64_t>(half - 1, 1));
  return torch::exp(torch::arange(half, options.dtype(torch::kFloat32)) * -step);
}

}  // namespace mmkd::nn
