// EDAM (Entropy Distillation in Attention Maps, paper §4.3 eqs. 10–13): temperature maps and the
// row-wise cross-entropy between student and teacher attention maps.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "mmkd/distill/map_upsampler.h"

namespace mmkd::distill {

/// Which map is the target `a` in F(a, b) = -Σ_j a_j log(b_j + eps).
enum class EdamDirection {
  kTeacherLogStudent,  ///< standard distillation: F = -Σ teacher · log student (the default)
  kStudentLogTeacher,  ///< eq. 13 read literally: F = -Σ student · log teacher
};

/// "teacher_log_student" / "student_log_teacher".
std::string to_string(EdamDirection direction);
/// Inverse of to_string; throws mmkd::Error naming the accepted values.
EdamDirection parse_edam_direction(const std::string& name);

/// Eqs. 10–11: the head average of the per-head softmax(logits / t). logits [B,H,Tq,Tk] are the
/// scaled logits QK^T/sqrt(d_k) with masked entries -inf; a row with no visible key is a zero
/// row (never NaN). Returns [B,Tq,Tk], differentiable in the logits.
torch::Tensor temperature_map(const torch::Tensor& logits, double t);

/// Eq. 12 for one layer: the mean over valid rows (b, q) of F(a, b) (see EdamDirection) between
/// student_map and teacher_map, both [B,Tq,Tk]. A row is valid when both maps' rows sum to > 0:
/// zero rows (queries that saw no key because of padding or the causal mask) are excluded. With
/// no valid row the result is 0, still connected to student_map so backward() works. The teacher
/// map is detached here: gradients flow only into the student. eps sits inside the log. The
/// result has the student map's dtype and device.
torch::Tensor edam_loss(const torch::Tensor& student_map, const torch::Tensor& teacher_map,
                        EdamDirection direction = EdamDirection::kTeacherLogStudent,
                        double eps = 1e-8);

/// EDAM-T↑ for one layer: teacher_map is detached, brought to the student's shape by
/// `upsampler`, and compared with student_map; gradients flow into the student and into the
/// upsampler's weights (the paper trains the upsampler with the student), never the teacher.
torch::Tensor edam_upsampled_loss(const torch::Tensor& student_map,
                                  const torch::Tensor& teacher_map, MapUpsampler& upsampler,
                                  EdamDirection direction = EdamDirection::kTeacherLogStudent,
                                  double eps = 1e-8);

/// Eq. 12 for one transformer pair, EDAM-S↓ (or any same-shape target): layer i compares
/// temperature_map(student_logits[i], t) with teacher[i], which is either teacher logits
/// [B,H,Tq,Tk] (turned into temperature_map(teacher[i], t)) or an already-made map [B,Tq,Tk]
/// (an ideal map, used as given: t does not apply to it). The per-layer losses (each a mean over
/// that layer's valid rows) are averaged over layers: Σ_layers Σ_rows F / (m·l) when every row
/// is valid, as layers of a pair share their masks.
torch::Tensor edam_layers_loss(const std::vector<torch::Tensor>& student_logits,
                               const std::vector<torch::Tensor>& teacher, double t,
                               EdamDirection direction = EdamDirection::kTeacherLogStudent,
                               double eps = 1e-8);

/// EDAM-T↑ for one transformer pair: as above, but teacher[i] (logits or a map) is resized by
/// upsamplers[i] (one per layer) before edam_upsampled_loss.
torch::Tensor edam_layers_loss(const std::vector<torch::Tensor>& student_logits,
                               const std::vector<torch::Tensor>& teacher,
                               std::vector<MapUpsampler>& upsamplers, double t,
                               EdamDirection direction = EdamDirection::kTeacherLogStudent,
                               double eps = 1e-8);

}  // namespace mmkd::distill
