// Paired comparison of two rows of a study over the seeds both finished: the mean difference, its
// 95% interval and a two-sided paired t-test, so a gain can be told from seed-to-seed noise.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

namespace mmkd::study {

/// Student's t distribution with `df` > 0 degrees of freedom: P(T <= t).
double student_t_cdf(double t, double df);

/// The `p`-quantile (0 < p < 1) of Student's t with `df` degrees of freedom.
double student_t_quantile(double p, double df);

/// A row's result minus its baseline's, seed by seed (the same seed shares data order, the
/// teacher and the initialisation of the shared parts).
struct PairedDifference {
  int64_t n = 0;        ///< seeds both rows finished
  double mean = 0.0;    ///< mean of the per-seed differences
  double std = 0.0;     ///< their sample standard deviation (0 when n == 1)
  double ci_low = 0.0;  ///< 95% interval of the mean (t with n-1 df); equal to mean when n < 2
  double ci_high = 0.0;
  double t = 0.0;  ///< mean / (std / sqrt(n)); infinite when every difference is the same
  double p = 1.0;  ///< two-sided p-value of the paired t-test; 1 when n < 2 (no test)
};

/// Differences row - baseline over the seeds present in both maps (seed -> value); nullopt when
/// no seed is shared.
std::optional<PairedDifference> paired_difference(const std::map<int64_t, double>& row,
                                                  const std::map<int64_t, double>& baseline);

}  // namespace mmkd::study
