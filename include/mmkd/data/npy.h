// Reading NumPy .npy files (format 1.0-3.0) of numbers, for `mmkd predict`.
#pragma once

#include <torch/torch.h>

#include <string>

namespace mmkd::data {

/// Reads a numeric .npy array (float16/32/64, int8..64, uint8, bool; little or big endian;
/// C or Fortran order) as a contiguous tensor of its own dtype. Object arrays (which would need
/// pickle) are refused. Errors name the file and what was wrong.
torch::Tensor read_npy(const std::string& path);

}  // namespace mmkd::data
