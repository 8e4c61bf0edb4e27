// EDAM: temperature maps and the row-wise cross-entropy between attention maps.
#include "mmkd/distill/edam.h"

#include "mmkd/core/error.h"
#include "mmkd/core/shape_text.h"
#include "mmkd/dist/batch_share.h"
#include "mmkd/nn/multihead_attention.h"

namespace mmkd::distill {

namespace {

void check_map(const torch::Tensor& map, const char* what) {
  MMKD_CHECK(map.defined(), "EDAM: the ", what, " map is undefined");
  MMKD_CHECK(map.dim() == 3, "EDAM: the ", what, " map must be [B,Tq,Tk], got ", shape_text(map));
}

// F(a, b) per row, averaged over rows where both maps are non-zero. `teacher` is used as given
// (the callers decide whether it is detached). The mean is sum/max(count, 1): with no valid row
// the numerator is an exact 0 that still depends on the student. Across ranks the count is the
// global batch's (dist::batch_mean).
torch::Tensor row_cross_entropy(const torch::Tensor& student, const torch::Tensor& teacher,
                                EdamDirection direction, double eps) {
  MMKD_CHECK(student.sizes() == teacher.sizes(), "EDAM: student map ", shape_text(student),
             " and teacher map ", shape_text(teacher), " differ in shape",
             " (EDAM-S↓ needs equal shapes; EDAM-T↑ resizes the teacher with a MapUpsampler)");
  MMKD_CHECK(eps >= 0, "EDAM: eps must be >= 0, got ", eps);
  const auto target = direction == EdamDirection::kTeacherLogStudent ? teacher : student;
  const auto predicted = direction == EdamDirection::kTeacherLogStudent ? student : teacher;
  const auto per_row = -(target * torch::log(predicted + eps)).sum(-1);  // [B,Tq]
  const auto valid = ((student.sum(-1) > 0) & (teacher.sum(-1) > 0)).to(per_row.dtype());
  return dist::batch_mean((per_row * valid).sum(), valid.sum());
}

// Teacher layer entry: logits [B,H,Tq,Tk] → temperature map; a map [B,Tq,Tk] is used as given.
torch::Tensor teacher_layer_map(const torch::Tensor& teacher, double t, size_t layer) {
  MMKD_CHECK(teacher.defined(), "EDAM: teacher entry of layer ", layer, " is undefined");
  if (teacher.dim() == 4) return temperature_map(teacher.detach(), t);
  MMKD_CHECK(teacher.dim() == 3, "EDAM: teacher entry of layer ", layer,
             " must be logits [B,H,Tq,Tk] or a map [B,Tq,Tk], got ", shape_text(teacher));
  return teacher.detach();
}

void check_layers(const std::vector<torch::Tensor>& student_logits,
                  const std::vector<torch::Tensor>& teacher) {
  MMKD_CHECK(!student_logits.empty(), "EDAM: no layers to distill");
  MMKD_CHECK(student_logits.size() == teacher.size(), "EDAM: ", student_logits.size(),
             " student layers but ", teacher.size(), " teacher layers");
}

}  // namespace

std::string to_string(EdamDirection direction) {
  switch (direction) {
    case EdamDirection::kTeacherLogStudent:
      return "teacher_log_student";
    case EdamDirection::kStudentLogTeacher:
      return "student_log_teacher";
  }
  MMKD_FAIL("EDAM: unknown direction ", static_cast<int>(direction));
}

EdamDirection parse_edam_direction(const std::string& name) {
  if (name == "teacher_log_student") return EdamDirection::kTeacherLogStudent;
  if (name == "student_log_teacher") return EdamDirection::kStudentLogTeacher;
  MMKD_FAIL("EDAM direction '", name,
            "' is not one of: teacher_log_student (standard, -sum teacher*log student), "
            "student_log_teacher (eq. 13 literally, -sum student*log teacher)");
}

torch::Tensor temperature_map(const torch::Tensor& logits, double t) {
  MMKD_CHECK(logits.defined() && logits.dim() == 4,
             "temperature_map: logits must be [B,H,Tq,Tk], got ", shape_text(logits));
  MMKD_CHECK(t > 0, "temperature_map: temperature must be > 0, got ", t);
  // Masks are shared by all heads, so a zero row in one head is a zero row in the average.
  return nn::masked_softmax(logits, t).mean(1);
}

torch::Tensor edam_loss(const torch::Tensor& student_map, const torch::Tensor& teacher_map,
                        EdamDirection direction, double eps) {
  check_map(student_map, "student");
  check_map(teacher_map, "teacher");
  const auto teacher = teacher_map.detach().to(student_map.options());
  return row_cross_entropy(student_map, teacher, direction, eps);
}

torch::Tensor edam_upsampled_loss(const torch::Tensor& student_map,
                                  const torch::Tensor& teacher_map, MapUpsampler& upsampler,
                                  EdamDirection direction, double eps) {
  check_map(student_map, "student");
  check_map(teacher_map, "teacher");
  // forward() detaches its input: the graph reaches the upsampler's weights, not the teacher.
  const auto teacher = upsampler->forward(teacher_map).to(student_map.dtype());
  return row_cross_entropy(student_map, teacher, direction, eps);
}

torch::Tensor edam_layers_loss(const std::vector<torch::Tensor>& student_logits,
                               const std::vector<torch::Tensor>& teacher, double t,
                               EdamDirection direction, double eps) {
  check_layers(student_logits, teacher);
  torch::Tensor total;
  for (size_t i = 0; i < student_logits.size(); ++i) {
    const auto loss = edam_loss(temperature_map(student_logits[i], t),
                                teacher_layer_map(teacher[i], t, i), direction, eps);
    total = total.defined() ? total + loss : loss;
  }
  return total / static_cast<double>(student_logits.size());
}

torch::Tensor edam_layers_loss(const std::vector<torch::Tensor>& student_logits,
                               const std::vector<torch::Tensor>& teacher,
                               std::vector<MapUpsampler>& upsamplers, double t,
                               EdamDirection direction, double eps) {
  check_layers(student_logits, teacher);
  MMKD_CHECK(upsamplers.size() == student_logits.size(), "EDAM-T↑: ", upsamplers.size(),
             " upsamplers for ", student_logits.size(), " layers (one per layer)");
  torch::Tensor total;
  for (size_t i = 0; i < student_logits.size(); ++i) {
    const auto loss =
        edam_upsampled_loss(temperature_map(student_logits[i], t),
                            teacher_layer_map(teacher[i], t, i), upsamplers[i], direction, eps);
    total = total.defined() ? total + loss : loss;
  }
  return total / static_cast<double>(student_logits.size());
}

}  // namespace mmkd::distill
