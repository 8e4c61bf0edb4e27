#include "mmkd/study/paired_difference.h"

#include <cmath>
#include <limits>
#include <vector>

#include "mmkd/core/error.h"

namespace mmkd::study {

namespace {

/// Continued fraction of the incomplete beta function, evaluated with the modified Lentz method;
/// converges quickly for x < (a + 1) / (a + b + 2), which the caller arranges by symmetry.
double incomplete_beta_fraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  constexpr double kEpsilon = 1e-15;
  const auto guard = [](double v) { return std::fabs(v) < kTiny ? kTiny : v; };
  double c = 1.0;
  double d = 1.0 / guard(1.0 - (a + b) * x / (a + 1.0));
  double result = d;
  for (int m = 1; m <= 500; ++m) {
    // Even step, then odd step of the fraction's terms.
    const double even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
    d = 1.0 / guard(1.0 + even * d);
    c = guard(1.0 + even / c);
    result *= d * c;
    const double odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
    d = 1.0 / guard(1.0 + odd * d);
    c = guard(1.0 + odd / c);
    const double step = d * c;
    result *= step;
    if (std::fabs(step - 1.0) < kEpsilon) break;
  }
  return result;
}

/// The regularised incomplete beta function I_x(a, b).
double regularized_incomplete_beta(double a, double b, double x) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  const double front = std::exp(log_front);
  if (x < (a + 1.0) / (a + b + 2.0)) return front * incomplete_beta_fraction(a, b, x) / a;
  return 1.0 - front * incomplete_beta_fraction(b, a, 1.0 - x) / b;
}

}  // namespace

double student_t_cdf(double t, double df) {
  MMKD_CHECK(df > 0, "student_t_cdf: degrees of freedom must be positive, got ", df);
  if (std::isinf(t)) return t > 0 ? 1.0 : 0.0;
  // P(|T| > |t|) = I_{df/(df+t^2)}(df/2, 1/2).
  const double tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
  return t >= 0 ? 1.0 - tail : tail;
}

double student_t_quantile(double p, double df) {
  MMKD_CHECK(p > 0 && p < 1, "student_t_quantile: p must be in (0, 1), got ", p);
  if (p < 0.5) return -student_t_quantile(1.0 - p, df);
  // The cdf is monotone: bisect on [0, hi] after growing hi past the quantile.
  double lo = 0.0, hi = 1.0;
  while (student_t_cdf(hi, df) < p) hi *= 2.0;
  for (int i = 0; i < 200 && hi - lo > 1e-12 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (student_t_cdf(mid, df) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

std::optional<PairedDifference> paired_difference(const std::map<int64_t, double>& row,
                                                  const std::map<int64_t, double>& baseline) {
  std::vector<double> diffs;
  for (const auto& [seed, value] : row)
    if (const auto it = baseline.find(seed); it != baseline.end())
      diffs.push_back(value - it->second);
  if (diffs.empty()) return std::nullopt;
  PairedDifference out;
  out.n = static_cast<int64_t>(diffs.size());
  for (double d : diffs) out.mean += d;
  out.mean /= static_cast<double>(out.n);
  out.ci_low = out.ci_high = out.mean;
  if (out.n < 2) return out;
  double squares = 0.0;
  for (double d : diffs) squares += (d - out.mean) * (d - out.mean);
  out.std = std::sqrt(squares / static_cast<double>(out.n - 1));
  const double df = static_cast<double>(out.n - 1);
  const double se = out.std / std::sqrt(static_cast<double>(out.n));
  if (se == 0.0) {
    // Every seed moved by the same amount: no spread to test against.
    out.t =
        out.mean == 0.0 ? 0.0 : std::copysign(std::numeric_limits<double>::infinity(), out.mean);
    out.p = out.mean == 0.0 ? 1.0 : 0.0;
    return out;
  }
  out.t = out.mean / se;
  out.p = 2.0 * (1.0 - student_t_cdf(std::fabs(out.t), df));
  const double q = student_t_quantile(0.975, df);
  out.ci_low = out.mean - q * se;
  out.ci_high = out.mean + q * se;
  return out;
}

}  // namespace mmkd::study
