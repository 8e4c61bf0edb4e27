#include "mmkd/train/labels.h"

#include <algorithm>
#include <cmath>

#include "mmkd/core/error.h"

namespace mmkd::train {

double round_half_even(double v) {
  if (!std::isfinite(v)) return v;
  const double lower = std::floor(v);
  // v - floor(v) is exact for doubles, so the comparison with 0.5 decides ties exactly,
  // independent of the floating-point environment's rounding mode.
  const double frac = v - lower;
  double rounded;
  if (frac < 0.5) {
    rounded = lower;
  } else if (frac > 0.5) {
    rounded = lower + 1.0;
  } else {
    rounded = std::fmod(lower, 2.0) == 0.0 ? lower : lower + 1.0;
  }
  // Keep the sign of zero as numpy does (-0.4 -> -0.0); it does not change the class.
  return std::copysign(rounded, v);
}

namespace {

int64_t clip_round_shift(double v, double bound, const char* rule) {
  MMKD_CHECK(!std::isnan(v), "sentiment_to_class", rule, ": label is NaN");
  const double clipped = std::clamp(v, -bound, bound);
  return static_cast<int64_t>(round_half_even(clipped) + bound);
}

}  // namespace

int64_t sentiment_to_class(double v) { return clip_round_shift(v, 3.0, ""); }

int64_t sentiment_to_class5(double v) { return clip_round_shift(v, 2.0, "5"); }

torch::Tensor sentiment_to_class(const torch::Tensor& labels) {
  MMKD_CHECK(labels.defined(), "sentiment_to_class: labels tensor is undefined");
  MMKD_CHECK(labels.is_floating_point(), "sentiment_to_class: expected a floating tensor, got ",
             labels.scalar_type());
  const torch::Tensor values = labels.to(torch::kDouble);
  MMKD_CHECK(!values.isnan().any().item<bool>(), "sentiment_to_class: labels contain NaN");
  // torch::round rounds half to even (it maps to nearbyint), the same rule as np.round;
  // labels_test checks this on the tie cases.
  return (values.clamp(-3.0, 3.0).round() + 3.0).to(torch::kLong);
}

}  // namespace mmkd::train
