// Heat-map figures (attention maps, confusion matrices) drawn with cairo and written as PNG.
#pragma once

#include <torch/torch.h>

#include <array>
#include <string>
#include <vector>

namespace mmkd::report {

struct HeatmapPanel {
  std::string title;
  torch::Tensor values;  ///< 2-D; rows drawn top to bottom
  std::string row_label = "query step";
  std::string column_label = "key step";
  bool annotate = false;  ///< print each cell's value (small matrices such as confusions)
  std::vector<std::string> tick_labels;       ///< per row/column (square matrices), optional
  std::vector<bool> row_marks, column_marks;  ///< steps marked in red beside the axes (events)
};

struct FigureOptions {
  std::string title;
  int64_t columns = 3;       ///< panels per row
  int64_t panel_size = 240;  ///< pixels of the larger side of each panel's map
};

/// Draws `panels` in a grid with a shared title and a colour bar per panel, and writes the PNG
/// atomically to `path`. Errors name the path.
void write_heatmaps(const std::vector<HeatmapPanel>& panels, const FigureOptions& options,
                    const std::string& path);

/// The viridis colour of `t` in [0, 1] as r, g, b in [0, 1].
std::array<double, 3> viridis(double t);

}  // namespace mmkd::report
