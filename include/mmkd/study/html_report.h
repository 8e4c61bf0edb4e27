// A self-contained report.html: the study table, training curves (inline SVG from each run's
// log.csv) and the figures (PNG embedded as base64), readable offline and mailable as one file.
#pragma once

#include <string>
#include <vector>

#include "mmkd/study/study_config.h"
#include "mmkd/study/study_table.h"

namespace mmkd::study {

struct HtmlFigure {
  std::string caption;
  std::string png_path;
};

struct HtmlReport {
  std::string title;
  StudyConfig config;
  std::vector<TableRow> rows;
  std::vector<std::string> roots;  ///< where the runs (and their log.csv) are
  std::vector<HtmlFigure> figures;
};

std::string render_html(const HtmlReport& report);

/// Standard base64 (RFC 4648) of `bytes`.
std::string base64(const std::string& bytes);

/// An SVG scatter of teacher map lift (x) against gain over the baseline (y), EDAM runs in red
/// with their least-squares line and Pearson r, other KD runs in grey.
std::string svg_lift_gain(const std::vector<LiftGainPoint>& points);

/// An SVG line chart of `series` (name, y values at x = 1..n), `y_label` on the axis.
std::string svg_chart(const std::vector<std::pair<std::string, std::vector<double>>>& series,
                      const std::string& y_label);

}  // namespace mmkd::study
