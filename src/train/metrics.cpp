#include "mmkd/train/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "mmkd/core/error.h"
#include "mmkd/train/labels.h"

namespace mmkd::train {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Flattened int64 copy of a class tensor, checked for type, size and range.
std::vector<int64_t> class_vector(const torch::Tensor& t, int64_t num_classes, const char* what) {
  MMKD_CHECK(t.defined(), "classification metrics: ", what, " tensor is undefined");
  MMKD_CHECK(c10::isIntegralType(t.scalar_type(), /*includeBool=*/true),
             "classification metrics: ", what, " must hold integer classes, got ", t.scalar_type());
  const torch::Tensor flat = t.detach().to(torch::kCPU, torch::kLong).contiguous().view(-1);
  const int64_t* data = flat.data_ptr<int64_t>();
  std::vector<int64_t> out(data, data + flat.numel());
  for (size_t i = 0; i < out.size(); ++i) {
    MMKD_CHECK(out[i] >= 0 && out[i] < num_classes, "classification metrics: ", what, "[", i,
               "] = ", out[i], " is outside [0, ", num_classes, ")");
  }
  return out;
}

/// Flattened double copy of a real-valued tensor.
std::vector<double> value_vector(const torch::Tensor& t, const char* what) {
  MMKD_CHECK(t.defined(), "regression metrics: ", what, " tensor is undefined");
  const torch::Tensor flat = t.detach().to(torch::kCPU, torch::kDouble).contiguous().view(-1);
  const double* data = flat.data_ptr<double>();
  return std::vector<double>(data, data + flat.numel());
}

/// Row-major K*K counts, rows true, columns predicted.
std::vector<int64_t> confusion_counts(const std::vector<int64_t>& predicted,
                                      const std::vector<int64_t>& truth, int64_t k) {
  std::vector<int64_t> counts(static_cast<size_t>(k * k), 0);
  for (size_t i = 0; i < truth.size(); ++i) ++counts[truth[i] * k + predicted[i]];
  return counts;
}

std::vector<ClassScores> scores_from_confusion(const std::vector<int64_t>& counts, int64_t k) {
  std::vector<ClassScores> scores(static_cast<size_t>(k));
  for (int64_t c = 0; c < k; ++c) {
    ClassScores& s = scores[c];
    const int64_t tp = counts[c * k + c];
    for (int64_t j = 0; j < k; ++j) {
      s.support += counts[c * k + j];
      s.predicted += counts[j * k + c];
    }
    s.precision = s.predicted > 0 ? static_cast<double>(tp) / s.predicted : 0.0;
    s.recall = s.support > 0 ? static_cast<double>(tp) / s.support : 0.0;
    // 2tp / (2tp + fp + fn) == 2pr / (p + r) whenever p + r > 0, and 0 otherwise (sklearn).
    const int64_t denom = s.support + s.predicted;
    s.f1 = denom > 0 ? 2.0 * tp / denom : 0.0;
  }
  return scores;
}

double weighted_f1(const std::vector<ClassScores>& scores) {
  double sum = 0.0;
  int64_t total = 0;
  for (const auto& s : scores) {
    sum += s.f1 * s.support;
    total += s.support;
  }
  return total > 0 ? sum / total : kNaN;
}

std::string format_metric(double v) {
  if (std::isnan(v)) return "nan";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.4f", v);
  return buffer;
}

}  // namespace

torch::Tensor confusion_matrix(const torch::Tensor& predicted, const torch::Tensor& truth,
                               int64_t num_classes) {
  MMKD_CHECK(num_classes > 0, "confusion_matrix: num_classes must be positive, got ", num_classes);
  const auto pred = class_vector(predicted, num_classes, "predicted");
  const auto gold = class_vector(truth, num_classes, "truth");
  MMKD_CHECK(pred.size() == gold.size(), "confusion_matrix: predicted has ", pred.size(),
             " elements but truth has ", gold.size());
  auto counts = confusion_counts(pred, gold, num_classes);
  return torch::tensor(counts, torch::kLong).view({num_classes, num_classes});
}

double majority_class_rate(const torch::Tensor& truth, int64_t num_classes) {
  MMKD_CHECK(num_classes > 0, "majority_class_rate: num_classes must be positive, got ",
             num_classes);
  const auto gold = class_vector(truth, num_classes, "truth");
  MMKD_CHECK(!gold.empty(), "majority_class_rate: truth is empty");
  std::vector<int64_t> counts(static_cast<size_t>(num_classes), 0);
  for (int64_t c : gold) ++counts[c];
  return static_cast<double>(*std::max_element(counts.begin(), counts.end())) / gold.size();
}

ClassificationMetrics classification_metrics(const torch::Tensor& predicted,
                                             const torch::Tensor& truth, int64_t num_classes) {
  MMKD_CHECK(num_classes > 0, "classification_metrics: num_classes must be positive, got ",
             num_classes);
  const auto pred = class_vector(predicted, num_classes, "predicted");
  const auto gold = class_vector(truth, num_classes, "truth");
  MMKD_CHECK(pred.size() == gold.size(), "classification_metrics: predicted has ", pred.size(),
             " elements but truth has ", gold.size());
  MMKD_CHECK(!gold.empty(), "classification_metrics: no samples");

  ClassificationMetrics m;
  m.num_classes = num_classes;
  m.count = static_cast<int64_t>(gold.size());
  const auto counts = confusion_counts(pred, gold, num_classes);
  m.per_class = scores_from_confusion(counts, num_classes);

  int64_t correct = 0;
  int64_t majority = 0;
  double macro_sum = 0.0;
  for (int64_t c = 0; c < num_classes; ++c) {
    const ClassScores& s = m.per_class[c];
    correct += counts[c * num_classes + c];
    majority = std::max(majority, s.support);
    if (s.support > 0 || s.predicted > 0) {
      macro_sum += s.f1;
      ++m.macro_classes;
    }
  }
  m.accuracy = static_cast<double>(correct) / m.count;
  m.majority_rate = static_cast<double>(majority) / m.count;
  m.f1_weighted = weighted_f1(m.per_class);
  m.f1_macro = macro_sum / m.macro_classes;  // macro_classes >= 1 because N > 0
  m.confusion = torch::tensor(counts, torch::kLong).view({num_classes, num_classes});
  return m;
}

nlohmann::json ClassificationMetrics::to_json() const {
  nlohmann::json per = nlohmann::json::array();
  for (size_t c = 0; c < per_class.size(); ++c) {
    const ClassScores& s = per_class[c];
    per.push_back({{"class", c},
                   {"precision", s.precision},
                   {"recall", s.recall},
                   {"f1", s.f1},
                   {"support", s.support},
                   {"predicted", s.predicted}});
  }
  nlohmann::json rows = nlohmann::json::array();
  if (confusion.defined()) {
    const torch::Tensor c = confusion.to(torch::kCPU, torch::kLong).contiguous();
    const auto acc = c.accessor<int64_t, 2>();
    for (int64_t i = 0; i < c.size(0); ++i) {
      nlohmann::json row = nlohmann::json::array();
      for (int64_t j = 0; j < c.size(1); ++j) row.push_back(acc[i][j]);
      rows.push_back(row);
    }
  }
  return {
      {"num_classes", num_classes},     {"count", count},       {"accuracy", accuracy},
      {"f1_weighted", f1_weighted},     {"f1_macro", f1_macro}, {"macro_classes", macro_classes},
      {"majority_rate", majority_rate}, {"per_class", per},     {"confusion", rows}};
}

std::string ClassificationMetrics::summary() const {
  return "acc" + std::to_string(num_classes) + " " + format_metric(accuracy) + " F1w " +
         format_metric(f1_weighted) + " F1m " + format_metric(f1_macro) + " (N " +
         std::to_string(count) + ", majority " + format_metric(majority_rate) + ")";
}

double binary_weighted_f1(const std::vector<bool>& y_true, const std::vector<bool>& y_pred) {
  MMKD_CHECK(y_true.size() == y_pred.size(), "binary_weighted_f1: y_true has ", y_true.size(),
             " elements but y_pred has ", y_pred.size());
  if (y_true.empty()) return kNaN;
  std::vector<int64_t> gold(y_true.begin(), y_true.end());
  std::vector<int64_t> pred(y_pred.begin(), y_pred.end());
  return weighted_f1(scores_from_confusion(confusion_counts(pred, gold, 2), 2));
}

double pearson_r(const std::vector<double>& x, const std::vector<double>& y) {
  MMKD_CHECK(x.size() == y.size(), "pearson_r: x has ", x.size(), " elements but y has ", y.size());
  const size_t n = x.size();
  if (n < 2) return kNaN;
  double mx = 0.0;
  double my = 0.0;
  for (size_t i = 0; i < n; ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  double sxy = 0.0;
  double sxx = 0.0;
  double syy = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double dx = x[i] - mx;
    const double dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (!(sxx > 0.0) || !(syy > 0.0)) return kNaN;  // also NaN when an input holds NaN
  return std::clamp(sxy / (std::sqrt(sxx) * std::sqrt(syy)), -1.0, 1.0);
}

RegressionMetrics regression_metrics(const torch::Tensor& predictions, const torch::Tensor& truth) {
  const auto pred = value_vector(predictions, "predictions");
  const auto gold = value_vector(truth, "truth");
  MMKD_CHECK(pred.size() == gold.size(), "regression_metrics: predictions have ", pred.size(),
             " elements but truth has ", gold.size());
  MMKD_CHECK(!gold.empty(), "regression_metrics: no samples");

  RegressionMetrics m;
  const size_t n = gold.size();
  m.count = static_cast<int64_t>(n);
  double abs_sum = 0.0;
  int64_t hit7 = 0;
  int64_t hit5 = 0;
  std::vector<bool> non0_true, non0_pred, has0_true, has0_pred;
  for (size_t i = 0; i < n; ++i) {
    const double p = pred[i];
    const double t = gold[i];
    abs_sum += std::abs(p - t);
    // np.clip then np.round (half to even); NaN compares unequal, as in numpy.
    if (round_half_even(std::clamp(p, -3.0, 3.0)) == round_half_even(std::clamp(t, -3.0, 3.0)))
      ++hit7;
    if (round_half_even(std::clamp(p, -2.0, 2.0)) == round_half_even(std::clamp(t, -2.0, 2.0)))
      ++hit5;
    if (t != 0.0) {
      non0_true.push_back(t > 0.0);
      non0_pred.push_back(p > 0.0);
    }
    has0_true.push_back(t >= 0.0);
    has0_pred.push_back(p >= 0.0);
  }
  m.mae = abs_sum / n;
  m.pearson_r = pearson_r(pred, gold);
  m.acc7 = static_cast<double>(hit7) / n;
  m.acc5 = static_cast<double>(hit5) / n;

  auto agreement = [](const std::vector<bool>& a, const std::vector<bool>& b) {
    if (a.empty()) return kNaN;
    int64_t same = 0;
    for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
    return static_cast<double>(same) / a.size();
  };
  m.non0_count = static_cast<int64_t>(non0_true.size());
  m.non0_acc2 = agreement(non0_true, non0_pred);
  m.non0_f1 = binary_weighted_f1(non0_true, non0_pred);
  m.non0_f1_mult_order = binary_weighted_f1(non0_pred, non0_true);
  m.has0_acc2 = agreement(has0_true, has0_pred);
  m.has0_f1 = binary_weighted_f1(has0_true, has0_pred);
  return m;
}

nlohmann::json RegressionMetrics::to_json() const {
  // nlohmann::json writes NaN as null when dumped.
  return {
      {"count", count},         {"mae", mae},         {"pearson_r", pearson_r},
      {"acc7", acc7},           {"acc5", acc5},       {"non0_count", non0_count},
      {"non0_acc2", non0_acc2}, {"non0_f1", non0_f1}, {"non0_f1_mult_order", non0_f1_mult_order},
      {"has0_acc2", has0_acc2}, {"has0_f1", has0_f1}};
}

std::string RegressionMetrics::summary() const {
  return "MAE " + format_metric(mae) + " r " + format_metric(pearson_r) + " acc7 " +
         format_metric(acc7) + " acc5 " + format_metric(acc5) + " acc2(non0) " +
         format_metric(non0_acc2) + " F1(non0) " + format_metric(non0_f1) + " acc2(has0) " +
         format_metric(has0_acc2) + " F1(has0) " + format_metric(has0_f1) + " (N " +
         std::to_string(count) + ", non0 " + std::to_string(non0_count) + ")";
}

}  // namespace mmkd::train
