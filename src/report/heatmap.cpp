#include "mmkd/report/heatmap.h"

#include <cairo.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "mmkd/core/atomic_file.h"
#include "mmkd/core/error.h"

namespace mmkd::report {

namespace {

constexpr double kMargin = 56;    // room for axis labels and titles around a panel
constexpr double kBarWidth = 12;  // colour bar
constexpr double kTitleHeight = 34;

// Viridis sampled at 9 points (matplotlib's table); linear interpolation in between.
constexpr std::array<std::array<double, 3>, 9> kViridis = {{{0.267, 0.005, 0.329},
                                                            {0.279, 0.175, 0.483},
                                                            {0.230, 0.322, 0.546},
                                                            {0.173, 0.449, 0.558},
                                                            {0.128, 0.567, 0.551},
                                                            {0.153, 0.681, 0.503},
                                                            {0.369, 0.789, 0.383},
                                                            {0.678, 0.864, 0.190},
                                                            {0.993, 0.906, 0.144}}};

std::string format_cell_value(double v) {
  std::ostringstream out;
  if (std::abs(v - std::round(v)) < 1e-9 && std::abs(v) < 1e6)
    out << static_cast<int64_t>(std::round(v));
  else
    out << std::setprecision(2) << v;
  return out.str();
}

void text(cairo_t* cr, double x, double y, const std::string& s, double size, bool centred,
          double angle = 0) {
  cairo_set_font_size(cr, size);
  cairo_text_extents_t ext;
  cairo_text_extents(cr, s.c_str(), &ext);
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, angle);
  cairo_move_to(cr, centred ? -ext.width / 2 - ext.x_bearing : 0, 0);
  cairo_show_text(cr, s.c_str());
  cairo_restore(cr);
}

/// Draws one panel with its top-left map corner at (x, y) in a box of `w` x `h` pixels.
void draw_panel(cairo_t* cr, const HeatmapPanel& panel, double x, double y, double w, double h) {
  const torch::Tensor v = panel.values.detach().to(torch::kCPU, torch::kDouble).contiguous();
  const int64_t rows = v.size(0), cols = v.size(1);
  const double lo = std::min(0.0, v.min().item<double>());
  // Attention maps: a few rows that see one key (1.0) would wash out the rest, so the colour
  // scale ends at the 99th percentile and brighter cells saturate. Counts use the full range.
  const double top =
      panel.annotate ? v.max().item<double>() : torch::quantile(v.flatten(), 0.99).item<double>();
  const double hi = std::max(lo + 1e-12, top);
  const double cw = w / static_cast<double>(cols), ch = h / static_cast<double>(rows);
  const double* data = v.data_ptr<double>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const double value = data[r * cols + c];
      const auto rgb = viridis((value - lo) / (hi - lo));
      cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
      // Cells overlap by a pixel's fraction so that large maps show no seams.
      cairo_rectangle(cr, x + c * cw, y + r * ch, cw + 0.5, ch + 0.5);
      cairo_fill(cr);
      if (panel.annotate) {
        const bool dark = (value - lo) / (hi - lo) < 0.6;
        cairo_set_source_rgb(cr, dark ? 1 : 0, dark ? 1 : 0, dark ? 1 : 0);
        text(cr, x + (c + 0.5) * cw, y + (r + 0.5) * ch + 4, format_cell_value(value), 11, true);
      }
    }
  }
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, x, y, w, h);
  cairo_stroke(cr);
  text(cr, x + w / 2, y - 8, panel.title, 12, true);
  std::ostringstream shape;
  shape << panel.row_label << " (" << rows << ")";
  text(cr, x - 12, y + h / 2, shape.str(), 10, true, -M_PI / 2);
  std::ostringstream cshape;
  cshape << panel.column_label << " (" << cols << ")";
  text(cr, x + w / 2, y + h + 16, cshape.str(), 10, true);
  if (static_cast<int64_t>(panel.tick_labels.size()) == rows && rows == cols) {
    for (int64_t i = 0; i < rows; ++i) {
      text(cr, x - 26, y + (i + 0.5) * ch + 4, panel.tick_labels[i], 9, false);
      text(cr, x + (i + 0.5) * cw, y + h + 28, panel.tick_labels[i], 9, true);
    }
  }
  // Marked steps (events): red ticks left of the rows and below the columns.
  cairo_set_source_rgb(cr, 0.85, 0.1, 0.1);
  for (size_t r = 0; r < panel.row_marks.size() && static_cast<int64_t>(r) < rows; ++r)
    if (panel.row_marks[r]) cairo_rectangle(cr, x - 4, y + r * ch, 3, std::max(ch, 1.0));
  for (size_t c = 0; c < panel.column_marks.size() && static_cast<int64_t>(c) < cols; ++c)
    if (panel.column_marks[c]) cairo_rectangle(cr, x + c * cw, y + h + 1, std::max(cw, 1.0), 4);
  cairo_fill(cr);
  // Colour bar with its range.
  const double bx = x + w + 8;
  for (int i = 0; i < 100; ++i) {
    const auto rgb = viridis(1.0 - i / 99.0);
    cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
    cairo_rectangle(cr, bx, y + h * i / 100.0, kBarWidth, h / 100.0 + 0.5);
    cairo_fill(cr);
  }
  cairo_set_source_rgb(cr, 0, 0, 0);
  text(cr, bx, y - 2, format_cell_value(hi), 9, false);
  text(cr, bx, y + h + 10, format_cell_value(lo), 9, false);
}

}  // namespace

std::array<double, 3> viridis(double t) {
  t = std::clamp(std::isfinite(t) ? t : 0.0, 0.0, 1.0) * (kViridis.size() - 1);
  const size_t i = std::min(static_cast<size_t>(t), kViridis.size() - 2);
  const double f = t - static_cast<double>(i);
  std::array<double, 3> rgb{};
  for (int k = 0; k < 3; ++k) rgb[k] = kViridis[i][k] * (1 - f) + kViridis[i + 1][k] * f;
  return rgb;
}

void write_heatmaps(const std::vector<HeatmapPanel>& panels, const FigureOptions& options,
                    const std::string& path) {
  MMKD_CHECK(!panels.empty(), path, ": a figure needs at least one panel");
  for (const auto& p : panels)
    MMKD_CHECK(p.values.dim() == 2 && p.values.numel() > 0, path, ": panel '", p.title,
               "' needs a non-empty 2-D matrix");
  const int64_t columns = std::min<int64_t>(options.columns, panels.size());
  const int64_t rows = (static_cast<int64_t>(panels.size()) + columns - 1) / columns;
  const double cell_w = options.panel_size + 2 * kMargin + kBarWidth;
  const double cell_h = options.panel_size + 2 * kMargin;
  const int width = static_cast<int>(cell_w * columns);
  const int height = static_cast<int>(cell_h * rows + kTitleHeight);
  cairo_surface_t* surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  cairo_t* cr = cairo_create(surface);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_source_rgb(cr, 0, 0, 0);
  text(cr, width / 2.0, 22, options.title, 14, true);
  for (size_t i = 0; i < panels.size(); ++i) {
    const auto& p = panels[i];
    // Keep each map's aspect ratio inside a square of panel_size.
    const double r = static_cast<double>(p.values.size(0)),
                 c = static_cast<double>(p.values.size(1));
    const double scale = options.panel_size / std::max(r, c);
    const double w = c * scale, h = r * scale;
    const double x0 = (i % columns) * cell_w + kMargin + (options.panel_size - w) / 2;
    const double y0 =
        kTitleHeight + (i / columns) * cell_h + kMargin / 2 + (options.panel_size - h) / 2;
    draw_panel(cr, p, x0, y0, w, h);
  }
  // Encode into memory, then write atomically: a failed write (full disk) is then one
  // mmkd::Error naming the path, and no temporary file is left behind.
  std::string png;
  const cairo_status_t status = cairo_surface_write_to_png_stream(
      surface,
      [](void* closure, const unsigned char* data, unsigned int n) {
        static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), n);
        return CAIRO_STATUS_SUCCESS;
      },
      &png);
  cairo_destroy(cr);
  cairo_surface_destroy(surface);
  MMKD_CHECK(status == CAIRO_STATUS_SUCCESS, path, ": could not encode the PNG (",
             cairo_status_to_string(status), ")");
  write_text_atomic(path, png);
}

}  // namespace mmkd::report
