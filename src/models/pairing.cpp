#include "mmkd/models/pairing.h"

#include "mmkd/core/error.h"
#include "mmkd/models/architecture.h"

namespace mmkd::models {

namespace {

// Configuration 1 distils every transformer of the complete teacher into its mirror.
std::vector<DistillPair> all_pairs_of_complete() {
  std::vector<DistillPair> pairs;
  for (const auto& name : transformer_names(teacher_stages(TeacherArch::kComplete))) {
    pairs.push_back({name, name});
  }
  return pairs;
}

}  // namespace

const std::vector<PairingConfig>& pairing_table() {
  static const std::vector<PairingConfig> table = {
      {1, TeacherArch::kComplete, StudentArch::kComplete, all_pairs_of_complete(),
       "KD from the Complete Teacher Network"},
      {2,
       TeacherArch::kVideoBranch,
       StudentArch::kVideo,
       {{"A<-V", "A<-V"}, {"L<-V", "L<-V"}},
       "KD from Video Branch"},
      {3,
       TeacherArch::kLanguageBranch,
       StudentArch::kLanguage,
       {{"V<-L", "V<-L"}, {"A<-L", "A<-L"}},
       "KD from Language Branch"},
      {4,
       TeacherArch::kAudioBranch,
       StudentArch::kAudio,
       {{"V<-A", "V<-A"}, {"L<-A", "L<-A"}},
       "KD from Audio Branch"},
      {5,
       TeacherArch::kComplete,
       StudentArch::kLanguageAudio,
       {{"V<-A", "V<-A"}, {"V<-L", "V<-L"}},
       "KD from Language and Audio Branches of Complete Teacher Network"},
  };
  return table;
}

const PairingConfig& pairing(int id) {
  MMKD_CHECK(id >= 1 && id <= 5, "student-teacher configuration ", id,
             " does not exist; the paper defines 1..5");
  return pairing_table()[static_cast<size_t>(id - 1)];
}

const PairingConfig& pairing_for_student(StudentArch arch) {
  for (const auto& entry : pairing_table()) {
    if (entry.student == arch) return entry;
  }
  MMKD_FAIL("no student-teacher configuration for student ", student_arch_name(arch));
}

}  // namespace mmkd::models
