// analytic_cost: what inference mode skips, against closed forms worked out by hand.
#include <gtest/gtest.h>

#include "mmkd/models/multimodal_net.h"
#include "mmkd/train/bench.h"

namespace mmkd::train {
namespace {

using models::InputShape;
using models::ModelConfig;
using models::Readout;

// Per query row, besides the K and V projections: Q, out and FFN (2 * 10 w^2) plus QK^T and AV
// (4 Tk w).
double row_flops(double w, double tk) { return 20.0 * w * w + 4.0 * tk * w; }

ModelConfig small_config(models::Role role) {
  ModelConfig config;
  config.role = role;
  config.d_model = 8;
  config.layers = 2;
  config.heads = 2;
  return config;
}

TEST(AnalyticCost, InferenceSkipsTheRowsTheLastReadoutDoesNotNeed) {
  // Student (5) with every proxy at the video length T = 16 (tiny shape), d = 8, 2 layers:
  // V<-V in self form (the last layer keeps one row), V<-A_S and V<-L_S in cross form (every
  // layer keeps one row).
  auto student = small_config(models::Role::kStudent);
  student.student_arch = models::StudentArch::kLanguageAudio;
  student.proxy_mode = models::ProxyMode::kKeep;
  auto cost = analytic_cost(*models::build_model(student, InputShape::tiny()));
  EXPECT_DOUBLE_EQ(cost.forward_flops - cost.inference_flops, 15 * row_flops(8, 16) * (1 + 2 * 2));

  // The Complete teacher: its cross-modal outputs feed memories (self form, width 2d = 16, over
  // the 16/16/8 steps of V/A/L), so only each memory's last layer is pruned.
  auto teacher = small_config(models::Role::kTeacher);
  teacher.teacher_arch = models::TeacherArch::kComplete;
  cost = analytic_cost(*models::build_model(teacher, InputShape::tiny()));
  EXPECT_DOUBLE_EQ(cost.forward_flops - cost.inference_flops,
                   2 * 15 * row_flops(16, 16) + 7 * row_flops(16, 8));

  // The mean readout needs every row.
  student.readout = Readout::kMean;
  cost = analytic_cost(*models::build_model(student, InputShape::tiny()));
  EXPECT_DOUBLE_EQ(cost.forward_flops, cost.inference_flops);
}

}  // namespace
}  // namespace mmkd::train
