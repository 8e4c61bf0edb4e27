// Sentiment scores in [-3,3] to class indices, by the acc7/acc5 rule of MulT and MMSA.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace mmkd::train {

/// Number of classes of the 7-class rule (sentiment -3..3).
inline constexpr int64_t kNumSentimentClasses = 7;

/// Rounds half to even (banker's rounding, numpy's `np.round` rule): 0.5 -> 0, 1.5 -> 2,
/// 2.5 -> 2, -0.5 -> -0, -2.5 -> -2. Exact for every finite double; NaN stays NaN.
double round_half_even(double v);

/// The 7-class rule ("clip to [-3,3], round half to even, +3"): the class of MulT's and MMSA's
/// acc7, 0..6 (0 = most negative, 3 = neutral, 6 = most positive). Throws mmkd::Error on NaN.
int64_t sentiment_to_class(double v);

/// Tensor form of the 7-class rule, vectorised: any floating tensor (float labels [N], or
/// MulT's [N,1,1]) -> int64 tensor of the same shape with values 0..6. Computed in double
/// precision (float32 -> double is exact, so the result equals numpy's float32 rounding).
/// Throws mmkd::Error on a non-floating tensor or a NaN element.
torch::Tensor sentiment_to_class(const torch::Tensor& labels);

/// The 5-class rule of acc5 ("clip to [-2,2], round half to even, +2"): 0..4.
/// Throws mmkd::Error on NaN.
int64_t sentiment_to_class5(double v);

}  // namespace mmkd::train
