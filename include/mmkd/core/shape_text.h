// A tensor's shape as error messages print it.
#pragma once

#include <torch/types.h>

#include <string>

namespace mmkd {

/// "[2, 3]"; "undefined" for a tensor that holds nothing, so a check can say what it got.
std::string shape_text(const torch::Tensor& t);

}  // namespace mmkd
