// The paper's Fig. 3: head-averaged attention maps of one test sample for a teacher transformer
// and the student transformer distilled from it, after (and optionally before) distillation.
// Also confusion matrices as images.
#pragma once

#include <string>
#include <vector>

#include "mmkd/train/run_metrics.h"

namespace mmkd::report {

struct AttentionFigureOptions {
  std::string teacher;                   ///< run directory or checkpoint
  std::string student;                   ///< the distilled student: run directory or checkpoint
  std::string baseline;                  ///< optional: the student trained alone
  std::string pair = "V<-A";             ///< teacher transformer, e.g. "V<-A"
  std::vector<int64_t> layers = {1, 2};  ///< 1-based layer numbers
  int64_t sample = 0;                    ///< index in `split`
  std::string split = "test";
  std::string out = "attention.png";
};

/// Writes the figure; returns a one-line description of what it shows.
std::string write_attention_figure(const AttentionFigureOptions& options);

/// Writes the 7x7 test confusion matrix of a finished run.
void write_confusion_figure(const train::RunMetrics& metrics, const std::string& title,
                            const std::string& out);

}  // namespace mmkd::report
