#include "mmkd/models/architecture.h"

#include <algorithm>
#include <cctype>

#include "mmkd/core/error.h"

namespace mmkd::models {

namespace {

constexpr Modality V = Modality::kVideo;
constexpr Modality A = Modality::kAudio;
constexpr Modality L = Modality::kText;

char module_letter(Modality m) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(data::modality_letter(m)[0])));
}

// A complete network: each modality's branch is its two cross-modal transformers + memory.
std::vector<Stage> complete_stages() {
  return {{V, {A, L}, true}, {A, {V, L}, true}, {L, {V, A}, true}};
}

}  // namespace

std::string transformer_name(Modality key, Modality query) {
  return data::modality_letter(key) + "<-" + data::modality_letter(query);
}

std::string memory_name(Modality query) { return "mem:" + data::modality_letter(query); }

std::string module_name(Modality key, Modality query) {
  return std::string("trans_") + module_letter(query) + "_with_" + module_letter(key);
}

std::string memory_module_name(Modality query) {
  return std::string("trans_") + module_letter(query) + "_mem";
}

std::vector<Stage> teacher_stages(TeacherArch arch) {
  switch (arch) {
    case TeacherArch::kComplete:
      return complete_stages();
    case TeacherArch::kVideoBranch:
      return {{V, {A, L}, true}};
    case TeacherArch::kAudioBranch:
      return {{A, {V, L}, true}};
    case TeacherArch::kLanguageBranch:
      return {{L, {V, A}, true}};
  }
  MMKD_FAIL("unknown teacher architecture");
}

std::vector<Stage> student_stages(StudentArch arch) {
  switch (arch) {
    case StudentArch::kComplete:
      return complete_stages();
    case StudentArch::kVideo:  // V<-V, A<-V, L<-V
      return {{V, {V}, false}, {V, {A}, false}, {V, {L}, false}};
    case StudentArch::kLanguage:  // V<-V, V<-L, A<-L
      return {{V, {V}, false}, {L, {V}, false}, {L, {A}, false}};
    case StudentArch::kAudio:  // V<-V, V<-A, L<-A
      return {{V, {V}, false}, {A, {V}, false}, {A, {L}, false}};
    case StudentArch::kLanguageAudio:  // V<-V, V<-L, V<-A
      return {{V, {V}, false}, {L, {V}, false}, {A, {V}, false}};
  }
  MMKD_FAIL("unknown student architecture");
}

std::vector<Stage> stages(const ModelConfig& config) {
  auto list = config.role == Role::kTeacher ? teacher_stages(config.teacher_arch)
                                            : student_stages(config.student_arch);
  // MulT's code runs its branches L, A, V and concatenates [X<-A, X<-V]-style outputs in the
  // opposite order to mmkd's (e.g. [trans_v_with_l, trans_v_with_a]); the readouts follow. Only
  // networks built of MulT branches have a MulT order to follow.
  const bool mult_branches =
      config.role == Role::kTeacher || config.student_arch == StudentArch::kComplete;
  if (config.mult_compat() && mult_branches) {
    std::reverse(list.begin(), list.end());
    for (auto& stage : list) std::reverse(stage.keys.begin(), stage.keys.end());
  }
  return list;
}

std::vector<TransformerSpec> transformer_specs(const std::vector<Stage>& stage_list) {
  std::vector<TransformerSpec> specs;
  for (const auto& stage : stage_list) {
    for (auto key : stage.keys) {
      specs.push_back(
          {transformer_name(key, stage.query), stage.query, key, false, 1, !stage.memory});
    }
    if (stage.memory) {
      specs.push_back({memory_name(stage.query), stage.query, stage.query, true,
                       static_cast<int64_t>(stage.keys.size()), true});
    }
  }
  return specs;
}

std::vector<std::string> transformer_names(const std::vector<Stage>& stage_list) {
  std::vector<std::string> names;
  for (const auto& spec : transformer_specs(stage_list)) names.push_back(spec.name);
  return names;
}

std::string teacher_arch_name(TeacherArch arch) {
  switch (arch) {
    case TeacherArch::kComplete:
      return "complete";
    case TeacherArch::kVideoBranch:
      return "video";
    case TeacherArch::kAudioBranch:
      return "audio";
    case TeacherArch::kLanguageBranch:
      return "language";
  }
  return "?";
}

std::string student_arch_name(StudentArch arch) {
  switch (arch) {
    case StudentArch::kComplete:
      return "complete";
    case StudentArch::kVideo:
      return "video";
    case StudentArch::kLanguage:
      return "language";
    case StudentArch::kAudio:
      return "audio";
    case StudentArch::kLanguageAudio:
      return "language_audio";
  }
  return "?";
}

std::string teacher_arch_title(TeacherArch arch) {
  switch (arch) {
    case TeacherArch::kComplete:
      return "Complete Teacher Network";
    case TeacherArch::kVideoBranch:
      return "Video Branch";
    case TeacherArch::kAudioBranch:
      return "Audio Branch";
    case TeacherArch::kLanguageBranch:
      return "Language Branch";
  }
  return "?";
}

std::string student_arch_title(StudentArch arch) {
  switch (arch) {
    case StudentArch::kComplete:
      return "Complete student (9 transformers)";
    case StudentArch::kVideo:
      return "Video student (V<-V, A<-V, L<-V)";
    case StudentArch::kLanguage:
      return "Language student (V<-V, V<-L, A<-L)";
    case StudentArch::kAudio:
      return "Audio student (V<-V, V<-A, L<-A)";
    case StudentArch::kLanguageAudio:
      return "Language+Audio student (V<-V, V<-L, V<-A)";
  }
  return "?";
}

}  // namespace mmkd::models
