// The paper's five student-teacher configurations (§4.2): which teacher, which student, and which
// transformer pairs are distilled. One table, used by distillation and reports.
#pragma once

#include <string>
#include <vector>

#include "mmkd/models/model_config.h"

namespace mmkd::models {

/// A distilled pair: the student transformer and the teacher transformer it learns from.
struct DistillPair {
  std::string student;  ///< e.g. "V<-A" (of the student, on proxies)
  std::string teacher;  ///< e.g. "V<-A" (of the teacher)
};

struct PairingConfig {
  int id;  ///< 1..5, the paper's numbering
  TeacherArch teacher;
  StudentArch student;
  std::vector<DistillPair> pairs;
  std::string title;  ///< the paper's heading, e.g. "KD from Video Branch"
};

/// The table for configurations 1..5 in order.
const std::vector<PairingConfig>& pairing_table();

/// Configuration `id` (1..5); throws mmkd::Error otherwise.
const PairingConfig& pairing(int id);

/// The configuration whose student architecture is `arch` (the five students are distinct).
const PairingConfig& pairing_for_student(StudentArch arch);

}  // namespace mmkd::models
