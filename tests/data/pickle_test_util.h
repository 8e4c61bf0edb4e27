// Helpers shared by the pickle and MOSEI I/O tests: fixture paths and the fixtures' formulas.
#pragma once

#include <torch/torch.h>

#include <cstdlib>
#include <string>
#include <vector>

// Not mmkd::data::testing: in a unity build that name would capture `testing::` in the
// mmkd::data test files that mean mmkd::testing.
namespace mmkd::data::pickle_testing {

inline std::string pickle_fixture(const std::string& name) {
  return std::string(MMKD_FIXTURES_DIR) + "/" + name;
}

/// make_pickle_fixtures.py's formula(): offset + sum over axes of index * weight, the weights
/// from the last axis being 0.5, 10, 100, 1000.
inline torch::Tensor formula(const std::vector<int64_t>& shape, double offset = 0.0) {
  const double all_weights[] = {1000.0, 100.0, 10.0, 0.5};
  torch::Tensor x = torch::full(shape, offset, torch::kDouble);
  const size_t rank = shape.size();
  for (size_t axis = 0; axis < rank; ++axis) {
    std::vector<int64_t> view(rank, 1);
    view[axis] = -1;
    x = x + torch::arange(shape[axis], torch::kDouble).view(view) * all_weights[4 - rank + axis];
  }
  return x;
}

/// make_pickle_fixtures.py's linear(): 0, 1, 2, ... in C order.
inline torch::Tensor linear(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return torch::arange(n, torch::kLong).view(shape);
}

/// Whether Debian's python with numpy (the fixtures' and round trips' reference) is present.
inline bool reference_python_available() {
  return std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

/// Runs a shell command and returns its standard output.
inline std::string run_command(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  ::pclose(pipe);
  return out;
}

}  // namespace mmkd::data::pickle_testing
