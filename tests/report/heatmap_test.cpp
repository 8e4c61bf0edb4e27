#include "mmkd/report/heatmap.h"

#include <gtest/gtest.h>

#include <fstream>

#include "../support/cli.h"
#include "../support/temp_files.h"
#include "mmkd/core/error.h"

namespace mmkd::report {
namespace {

/// Width and height from a PNG's IHDR chunk (bytes 16..23, big-endian).
std::pair<uint32_t, uint32_t> png_size(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes(24, '\0');
  in.read(bytes.data(), 24);
  EXPECT_EQ(bytes.substr(1, 3), "PNG");
  EXPECT_EQ(bytes.substr(12, 4), "IHDR");
  const auto be = [&](size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = v << 8 | static_cast<uint8_t>(bytes[at + i]);
    return v;
  };
  return {be(16), be(20)};
}

TEST(Heatmap, ViridisEndsAreMatplotlibs) {
  const auto lo = viridis(0.0), hi = viridis(1.0);
  EXPECT_NEAR(lo[0], 0.267, 1e-9);
  EXPECT_NEAR(lo[2], 0.329, 1e-9);
  EXPECT_NEAR(hi[0], 0.993, 1e-9);
  EXPECT_NEAR(hi[1], 0.906, 1e-9);
  // Clamped outside [0,1], NaN drawn as the low end rather than crashing.
  EXPECT_EQ(viridis(-3.0), lo);
  EXPECT_EQ(viridis(std::nan("")), lo);
  const auto mid = viridis(1.0 / 16);  // halfway between the first two samples
  EXPECT_NEAR(mid[1], (0.005 + 0.175) / 2, 1e-9);
}

TEST(Heatmap, WritesAPngWhoseSizeFollowsTheGrid) {
  testing::TempDir dir("heatmap");
  std::vector<HeatmapPanel> panels(3);
  for (auto& p : panels) p.values = torch::rand({5, 8});
  FigureOptions options;
  options.columns = 2;
  options.panel_size = 100;
  write_heatmaps(panels, options, dir / "grid.png");
  const auto [w, h] = png_size(dir / "grid.png");
  // Two columns of (panel + 2 margins of 56 + bar 12), two rows of (panel + 2 margins) + title.
  EXPECT_EQ(w, 2u * (100 + 112 + 12));
  EXPECT_EQ(h, 2u * (100 + 112) + 34);
  EXPECT_TRUE(mmkd::testing::temp_files_of(dir / "grid.png").empty());
}

TEST(Heatmap, RefusesEmptyOrNon2dPanelsAndNamesThePath) {
  testing::TempDir dir("heatmap_bad");
  HeatmapPanel panel;
  panel.title = "flat";
  panel.values = torch::rand({4});
  try {
    write_heatmaps({panel}, {}, dir / "x.png");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'flat' needs a non-empty 2-D matrix"), std::string::npos);
  }
  panel.values = torch::rand({2, 2});
  EXPECT_THROW(write_heatmaps({panel}, {}, dir / "no/such/dir/x.png"), Error);
}

}  // namespace
}  // namespace mmkd::report
