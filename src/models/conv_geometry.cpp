#include "mmkd/models/conv_geometry.h"

#include "mmkd/core/error.h"

namespace mmkd::models {

int64_t conv1d_output_length(int64_t in, const ConvGeometry& g, int64_t dilation) {
  MMKD_CHECK(g.kernel >= 1 && g.stride >= 1 && g.padding >= 0 && dilation >= 1,
             "conv1d geometry: kernel ", g.kernel, ", stride ", g.stride, ", padding ", g.padding,
             " is invalid");
  const int64_t span = in + 2 * g.padding - dilation * (g.kernel - 1) - 1;
  return span < 0 ? 0 : span / g.stride + 1;
}

ConvGeometry same_length_geometry(int64_t kernel) {
  MMKD_CHECK(kernel >= 1 && kernel % 2 == 1, "a length-keeping Conv1D needs an odd kernel, got ",
             kernel);
  return {kernel, 1, (kernel - 1) / 2};
}

ConvGeometry downsample_geometry(int64_t in, int64_t out, int64_t same_kernel) {
  MMKD_CHECK(in >= 1 && out >= 1, "proxy lengths must be positive, got ", in, " -> ", out);
  MMKD_CHECK(out <= in, "a student proxy can only downsample: video length ", in, " cannot become ",
             out, " (use proxy_mode keep)");
  ConvGeometry g;
  if (out == in) {
    g = same_length_geometry(same_kernel);
  } else {
    g.stride = in / out;
    g.kernel = in - g.stride * (out - 1);
    g.padding = 0;
  }
  MMKD_CHECK(conv1d_output_length(in, g) == out, "internal: proxy geometry k=", g.kernel,
             " s=", g.stride, " p=", g.padding, " maps ", in, " to ", conv1d_output_length(in, g),
             ", not ", out);
  return g;
}

}  // namespace mmkd::models
