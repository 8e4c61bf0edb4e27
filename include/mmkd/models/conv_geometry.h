// The time-axis geometry of a Conv1D (kernel, stride, padding) and the lengths it produces: the
// teacher's projections keep the length, the student's proxies may downsample the video.
#pragma once

#include <cstdint>

namespace mmkd::models {

/// Geometry of a Conv1D along time.
struct ConvGeometry {
  int64_t kernel = 1;
  int64_t stride = 1;
  int64_t padding = 0;
};

/// PyTorch's Conv1d output length: floor((in + 2p - dilation*(k-1) - 1) / s) + 1.
int64_t conv1d_output_length(int64_t in, const ConvGeometry& geometry, int64_t dilation = 1);

/// A length-keeping convolution: stride 1, padding (k-1)/2 (k odd).
ConvGeometry same_length_geometry(int64_t kernel);

/// A convolution mapping `in` steps to exactly `out` <= in steps without padding: stride
/// floor(in/out), kernel in - stride*(out-1) (>= stride, so every input step is covered); when
/// out == in, `same_kernel` with same-length padding. Checked with conv1d_output_length.
ConvGeometry downsample_geometry(int64_t in, int64_t out, int64_t same_kernel);

}  // namespace mmkd::models
