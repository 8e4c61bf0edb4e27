// Evaluation metrics: 7-class classification (accuracy, F1, confusion) and MulT's regression set.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mmkd::train {

/// Precision, recall and F1 of one class, one-vs-rest, as sklearn's
/// `precision_recall_fscore_support(average=None)` with zero_division=0.
struct ClassScores {
  double precision = 0.0;  ///< tp / (tp + fp); 0 when the class is never predicted
  double recall = 0.0;     ///< tp / (tp + fn); 0 when the class has no true samples
  double f1 = 0.0;         ///< 2pr / (p + r); 0 when p + r == 0
  int64_t support = 0;     ///< number of true samples of the class
  int64_t predicted = 0;   ///< number of samples predicted as the class
};

/// Metrics of a K-class prediction against the truth.
///
/// F1 averages follow sklearn's `f1_score` with `labels=None`: the labels are the union of the
/// classes present in y_true or y_pred (sklearn's `unique_labels`).
///  - weighted: sum over classes of F1 * support / N. Classes absent from y_true have weight 0,
///    so the union and "all K classes" give the same number.
///  - macro: unweighted mean of F1 over the union of classes present in y_true or y_pred. A class
///    absent from both is left out (it would add an F1 of 0 under "all K classes"), so this
///    equals sklearn's default and MMSA's numbers.
struct ClassificationMetrics {
  int64_t num_classes = 0;     ///< K
  int64_t count = 0;           ///< N
  double accuracy = 0.0;       ///< fraction of exact class matches
  double f1_weighted = 0.0;    ///< sklearn average='weighted'
  double f1_macro = 0.0;       ///< sklearn average='macro' over present classes
  int64_t macro_classes = 0;   ///< how many classes the macro average is over
  double majority_rate = 0.0;  ///< accuracy of always predicting the most frequent true class
  std::vector<ClassScores> per_class;  ///< K entries, class 0..K-1
  torch::Tensor confusion;             ///< int64 [K,K]; rows true class, columns predicted class

  /// {"num_classes", "count", "accuracy", "f1_weighted", "f1_macro", "macro_classes",
  ///  "majority_rate", "per_class": [{"class", "precision", "recall", "f1", "support",
  ///  "predicted"}...], "confusion": [[...], ...]}.
  nlohmann::json to_json() const;

  /// One line, e.g. "acc7 0.4512 F1w 0.4321 F1m 0.2345 (N 4659, majority 0.4130)".
  std::string summary() const;
};

/// Metrics of predicted classes against true classes: both int64 (or any integer type) with N
/// elements (flattened), values in [0, num_classes). Throws mmkd::Error on mismatched sizes,
/// N == 0, or a class out of range.
ClassificationMetrics classification_metrics(const torch::Tensor& predicted,
                                             const torch::Tensor& truth, int64_t num_classes = 7);

/// Confusion matrix alone: int64 [K,K], rows true class, columns predicted class.
torch::Tensor confusion_matrix(const torch::Tensor& predicted, const torch::Tensor& truth,
                               int64_t num_classes = 7);

/// Fraction of the most frequent class in `truth` (the accuracy of a constant predictor).
double majority_class_rate(const torch::Tensor& truth, int64_t num_classes = 7);

/// sklearn's f1_score(y_true, y_pred, average='weighted') on two boolean vectors (labels
/// false/true; the union of present labels). NaN when the vectors are empty.
double binary_weighted_f1(const std::vector<bool>& y_true, const std::vector<bool>& y_pred);

/// MulT/MMSA regression protocol on one sentiment output (MulT's `eval_mosei_senti`, MMSA's
/// `__eval_mosei_regression`).
struct RegressionMetrics {
  int64_t count = 0;       ///< N
  double mae = 0.0;        ///< mean |pred - true|
  double pearson_r = 0.0;  ///< np.corrcoef(pred, true)[0,1]; NaN if either side is constant
  double acc7 = 0.0;       ///< clip both to [-3,3], round half to even, compare
  double acc5 = 0.0;       ///< clip both to [-2,2], round half to even, compare
  // "Non0": MulT's binary protocol. Samples with true == 0 are excluded; binary classes are
  // (pred > 0) vs (true > 0). MulT's acc2 / MMSA's Non0_acc_2 and Non0_F1_score.
  int64_t non0_count = 0;  ///< samples with true != 0
  double non0_acc2 = 0.0;  ///< NaN when non0_count == 0
  double non0_f1 = 0.0;    ///< weighted F1 with y_true = (true > 0), y_pred = (pred > 0)
  /// MulT's code calls f1_score(pred > 0, true > 0) with the arguments swapped, so its printed F1
  /// weights by predicted support. Kept for comparing with numbers from MulT's script; not a
  /// headline metric.
  double non0_f1_mult_order = 0.0;
  // "Has0": MMSA's binary protocol over all samples: (pred >= 0) vs (true >= 0).
  double has0_acc2 = 0.0;  ///< MMSA's Has0_acc_2
  double has0_f1 = 0.0;    ///< MMSA's Has0_F1_score (weighted)

  /// {"count", "mae", "pearson_r", "acc7", "acc5", "non0_count", "non0_acc2", "non0_f1",
  ///  "non0_f1_mult_order", "has0_acc2", "has0_f1"}; NaN is written as null.
  nlohmann::json to_json() const;

  /// One line, e.g. "MAE 0.6123 r 0.6712 acc7 0.5012 acc5 0.5234 acc2(non0) 0.8123 ...".
  std::string summary() const;
};

/// Regression metrics of float predictions against float true sentiment; both flattened
/// (MulT's view(-1)) and of equal size N > 0. NaN predictions count as wrong in the accuracies
/// (as numpy's comparisons do) and make MAE and r NaN.
RegressionMetrics regression_metrics(const torch::Tensor& predictions, const torch::Tensor& truth);

/// Pearson correlation of two equal-length vectors (numpy's corrcoef, clipped to [-1,1]); NaN
/// when either has zero variance.
double pearson_r(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace mmkd::train
