#include "mmkd/study/html_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <optional>
#include <sstream>

#include "mmkd/report/run_summary.h"
#include "mmkd/study/study_plan.h"

namespace mmkd::study {

namespace fs = std::filesystem;

std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t chunk = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) chunk |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) chunk |= static_cast<uint8_t>(bytes[i + 2]);
    out += table[(chunk >> 18) & 63];
    out += table[(chunk >> 12) & 63];
    out += i + 1 < bytes.size() ? table[(chunk >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? table[chunk & 63] : '=';
  }
  return out;
}

namespace {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else if (c == '"')
      out += "&quot;";
    else
      out += c;
  }
  return out;
}

/// Columns `names` of a run's log.csv, or empty vectors when it has none.
std::vector<std::vector<double>> read_log(const std::string& path,
                                          const std::vector<std::string>& names) {
  std::vector<std::vector<double>> columns(names.size());
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return columns;
  std::vector<int> index(names.size(), -1);
  {
    std::stringstream header(line);
    std::string field;
    for (int i = 0; std::getline(header, field, ','); ++i)
      for (size_t n = 0; n < names.size(); ++n)
        if (field == names[n]) index[n] = i;
  }
  while (std::getline(in, line)) {
    std::stringstream row(line);
    std::string field;
    std::vector<std::string> fields;
    while (std::getline(row, field, ',')) fields.push_back(field);
    for (size_t n = 0; n < names.size(); ++n)
      if (index[n] >= 0 && index[n] < static_cast<int>(fields.size()))
        columns[n].push_back(std::strtod(fields[index[n]].c_str(), nullptr));
  }
  return columns;
}

std::string table_html(const std::vector<TableRow>& rows) {
  const auto& columns = table_columns();
  std::ostringstream out;
  out << "<table><tr>";
  for (const auto& c : columns) out << "<th>" << escape(c) << "</th>";
  out << "</tr>\n";
  std::string section;
  for (const auto& row : rows) {
    if (row.section != section) {
      section = row.section;
      out << "<tr class=section><td colspan=" << columns.size() << ">" << escape(section)
          << "</td></tr>\n";
    }
    out << "<tr>";
    for (const auto& c : table_cells(row)) out << "<td>" << escape(c) << "</td>";
    out << "</tr>\n";
  }
  out << "</table>\n";
  return out.str();
}

}  // namespace

std::string svg_chart(const std::vector<std::pair<std::string, std::vector<double>>>& series,
                      const std::string& y_label) {
  static const char* colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  constexpr double W = 560, H = 260, L = 50, R = 150, T = 20, B = 35;
  double lo = INFINITY, hi = -INFINITY;
  size_t n = 1;
  for (const auto& [name, ys] : series) {
    for (double y : ys)
      if (std::isfinite(y)) lo = std::min(lo, y), hi = std::max(hi, y);
    n = std::max(n, ys.size());
  }
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-9) hi = lo + 1;
  const auto px = [&](size_t i) { return L + (W - L - R) * (n > 1 ? double(i) / (n - 1) : 0.5); };
  const auto py = [&](double y) { return T + (H - T - B) * (1 - (y - lo) / (hi - lo)); };
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << "<svg xmlns='http://www.w3.org/2000/svg' width='"
      << W << "' height='" << H << "'>"
      << "<rect x='" << L << "' y='" << T << "' width='" << W - L - R << "' height='" << H - T - B
      << "' fill='none' stroke='#999'/>"
      << "<text x='" << L << "' y='" << H - 8 << "' font-size='11'>epoch 1</text>"
      << "<text x='" << W - R << "' y='" << H - 8 << "' font-size='11' text-anchor='end'>epoch "
      << n << "</text>"
      << "<text x='4' y='" << T + 10 << "' font-size='11'>" << std::setprecision(3) << hi
      << "</text><text x='4' y='" << H - B << "' font-size='11'>" << lo << "</text>"
      << "<text x='4' y='" << H / 2 << "' font-size='11'>" << escape(y_label) << "</text>"
      << std::setprecision(1);
  for (size_t s = 0; s < series.size(); ++s) {
    const auto& [name, ys] = series[s];
    const char* colour = colours[s % 10];
    out << "<polyline fill='none' stroke='" << colour << "' stroke-width='1.5' points='";
    for (size_t i = 0; i < ys.size(); ++i)
      if (std::isfinite(ys[i])) out << px(i) << "," << py(ys[i]) << " ";
    out << "'/><text x='" << W - R + 8 << "' y='" << T + 12 + 14 * s << "' font-size='11' fill='"
        << colour << "'>" << escape(name) << "</text>";
  }
  out << "</svg>";
  return out.str();
}

namespace {

bool is_edam(const LiftGainPoint& p) {
  for (const auto& m : p.methods)
    if (m.rfind("edam", 0) == 0) return true;
  return false;
}

/// Least-squares slope and Pearson r of y on x; nullopt with fewer than 3 points or no spread.
std::optional<std::pair<double, double>> fit_line(const std::vector<double>& x,
                                                  const std::vector<double>& y) {
  const size_t n = x.size();
  if (n < 3) return std::nullopt;
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) mx += x[i] / n, my += y[i] / n;
  double sxx = 0, syy = 0, sxy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
    sxy += (x[i] - mx) * (y[i] - my);
  }
  if (sxx <= 0 || syy <= 0) return std::nullopt;
  return std::make_pair(sxy / sxx, sxy / std::sqrt(sxx * syy));
}

}  // namespace

std::string svg_lift_gain(const std::vector<LiftGainPoint>& points) {
  constexpr double W = 560, H = 320, L = 55, R = 150, T = 20, B = 45;
  double x_lo = 1.0, x_hi = 1.1, y_lo = -1.0, y_hi = 1.0;
  for (const auto& p : points) {
    x_lo = std::min(x_lo, p.teacher_lift), x_hi = std::max(x_hi, p.teacher_lift);
    y_lo = std::min(y_lo, p.gain), y_hi = std::max(y_hi, p.gain);
  }
  const double x_pad = 0.05 * (x_hi - x_lo), y_pad = 0.05 * (y_hi - y_lo);
  x_lo -= x_pad, x_hi += x_pad, y_lo -= y_pad, y_hi += y_pad;
  const auto px = [&](double x) { return L + (W - L - R) * (x - x_lo) / (x_hi - x_lo); };
  const auto py = [&](double y) { return T + (H - T - B) * (1 - (y - y_lo) / (y_hi - y_lo)); };
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << "<svg xmlns='http://www.w3.org/2000/svg' width='"
      << W << "' height='" << H << "'>"
      << "<rect x='" << L << "' y='" << T << "' width='" << W - L - R << "' height='" << H - T - B
      << "' fill='none' stroke='#999'/>"
      << "<line x1='" << L << "' x2='" << W - R << "' y1='" << py(0) << "' y2='" << py(0)
      << "' stroke='#bbb' stroke-dasharray='4 3'/>"
      << "<text x='" << (L + W - R) / 2 << "' y='" << H - 8
      << "' font-size='11' text-anchor='middle'>teacher map lift (distilled pairs)</text>"
      << "<text x='" << L << "' y='" << H - B + 14 << "' font-size='11'>" << std::setprecision(2)
      << x_lo << "</text><text x='" << W - R << "' y='" << H - B + 14
      << "' font-size='11' text-anchor='end'>" << x_hi << "</text>"
      << "<text x='4' y='" << T + 10 << "' font-size='11'>" << std::setprecision(1) << y_hi
      << "</text><text x='4' y='" << H - B << "' font-size='11'>" << y_lo << "</text>"
      << "<text x='4' y='" << (T + H - B) / 2 << "' font-size='11'>gain (pts)</text>";
  std::vector<double> ex, ey;
  for (const auto& p : points) {
    const bool edam = is_edam(p);
    if (edam) ex.push_back(p.teacher_lift), ey.push_back(p.gain);
    out << "<circle cx='" << px(p.teacher_lift) << "' cy='" << py(p.gain) << "' r='3.5' fill='"
        << (edam ? "#d62728" : "#7f7f7f") << "' fill-opacity='0.75'><title>" << escape(p.row)
        << " seed " << p.seed << "</title></circle>";
  }
  out << "<text x='" << W - R + 8 << "' y='" << T + 12 << "' font-size='11' fill='#d62728'>EDAM"
      << " runs</text><text x='" << W - R + 8 << "' y='" << T + 26
      << "' font-size='11' fill='#7f7f7f'>other KD runs</text>";
  if (const auto fit = fit_line(ex, ey)) {
    double mx = 0, my = 0;
    for (size_t i = 0; i < ex.size(); ++i) mx += ex[i] / ex.size(), my += ey[i] / ey.size();
    const double slope = fit->first;
    out << "<line x1='" << px(x_lo) << "' y1='" << py(my + slope * (x_lo - mx)) << "' x2='"
        << px(x_hi) << "' y2='" << py(my + slope * (x_hi - mx))
        << "' stroke='#d62728' stroke-width='1'/>"
        << "<text x='" << W - R + 8 << "' y='" << T + 48 << "' font-size='11' fill='#d62728'>"
        << "EDAM: r = " << std::setprecision(2) << fit->second << "</text><text x='" << W - R + 8
        << "' y='" << T + 62 << "' font-size='11' fill='#d62728'>slope " << slope
        << " pts/lift</text>";
  }
  out << "</svg>";
  return out.str();
}

std::string render_html(const HtmlReport& report) {
  std::ostringstream out;
  out << "<!doctype html><html><head><meta charset='utf-8'><title>" << escape(report.title)
      << "</title><style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;}"
         "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px "
         "6px;text-align:right}td:first-child{text-align:left}tr.section td{background:#eee;"
         "text-align:left;font-weight:bold}img{max-width:100%}</style></head><body>\n"
      << "<h1>" << escape(report.title) << "</h1>\n<p>Accuracy and F1 on the test split, mean ± "
      << "std over seeds; the paper's figures (CMU-MOSEI) beside ours. Event-mass lift: the share "
         "of attention on event steps over its chance level (1 = chance).</p>\n"
      << table_html(report.rows)
      << "<p>Δ acc7: a row's accuracy minus its baseline's (a student trained alone), seed by "
         "seed, mean with its 95% interval (Student's t over the seeds both finished) and the "
         "two-sided paired t-test's p.</p>\n";
  if (const auto points = lift_gain_points(report.rows); !points.empty())
    out << "<h2>Teacher map lift and distillation gain</h2>\n<p>One point per distilled run: the "
           "event-mass lift of the teacher's distilled maps against the run's gain over its "
           "baseline of the same seed (hover for the run).</p>\n"
        << svg_lift_gain(points) << "\n";
  // Training curves: validation accuracy and loss of seed 0 of every row, one chart per section.
  out << "<h2>Training curves (seed 0)</h2>\n";
  std::string section;
  std::vector<std::pair<std::string, std::vector<double>>> acc, loss;
  const auto flush = [&] {
    if (acc.empty()) return;
    out << "<h3>" << escape(section) << "</h3>\n"
        << svg_chart(acc, "val acc7") << "\n"
        << svg_chart(loss, "val loss") << "\n";
    acc.clear();
    loss.clear();
  };
  for (const auto& row : report.rows) {
    if (row.kind == "missing-modality") continue;
    if (row.section != section) flush(), section = row.section;
    const auto run = find_run(report.roots, run_name(row.name, 0));
    if (!run) continue;
    const auto columns = read_log(run->log(), {"val_acc7", "val_loss"});
    acc.push_back({row.name, columns[0]});
    loss.push_back({row.name, columns[1]});
  }
  flush();
  out << "<h2>Figures</h2>\n";
  for (const auto& figure : report.figures) {
    std::ifstream in(figure.png_path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    out << "<figure><img alt='" << escape(figure.caption) << "' src='data:image/png;base64,"
        << base64(bytes) << "'><figcaption>" << escape(figure.caption)
        << "</figcaption></figure>\n";
  }
  out << "<h2>Study configuration</h2>\n<pre>" << escape(report.config.resolved_yaml)
      << "</pre>\n</body></html>\n";
  return out.str();
}

}  // namespace mmkd::study
