#include "mmkd/study/html_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
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
      << table_html(report.rows);
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
