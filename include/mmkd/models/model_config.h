// The `model:` section of a config: which teacher or student to build and its hyper-parameters,
// read strictly from YAML. Input lengths/dims come from the data, separately (InputShape).
#pragma once

#include <yaml-cpp/yaml.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mmkd/data/modality.h"

namespace mmkd::models {

enum class Role { kTeacher, kStudent };

/// The paper's four teacher configurations.
enum class TeacherArch { kComplete, kVideoBranch, kAudioBranch, kLanguageBranch };

/// The paper's five student architectures, numbered as its configurations 1..5.
enum class StudentArch {
  kComplete = 1,       ///< mirror of the complete teacher, 9 transformers
  kVideo = 2,          ///< V<-V, A<-V, L<-V
  kLanguage = 3,       ///< V<-V, V<-L, A<-L
  kAudio = 4,          ///< V<-V, V<-A, L<-A
  kLanguageAudio = 5,  ///< V<-V, V<-L, V<-A (the paper's Fig. 1)
};

enum class Readout { kLast, kMean };
enum class OutputMode { kClassification, kRegression };

/// How the student's proxies A_S, L_S are sized: `downsample` (EDAM-S↓) to the teacher's audio
/// and text lengths; `keep` (EDAM-T↑) all at the video length.
enum class ProxyMode { kDownsample, kKeep };

/// Whose conventions the network follows where mmkd and MulT's code differ (docs/models.md,
/// "The MulT mode"): `mmkd` (default) or `mult`, which computes exactly what MulT's code does
/// with the same weights (concatenation orders, positions of padded steps, no key padding mask,
/// dropout of the raw text, attention dropout by source, identity projections, memory depth).
enum class Compat { kMmkd, kMult };

struct ModelConfig {
  Role role = Role::kTeacher;
  TeacherArch teacher_arch = TeacherArch::kComplete;       ///< used when role == kTeacher
  StudentArch student_arch = StudentArch::kLanguageAudio;  ///< used when role == kStudent
  int64_t d_model = 40;  ///< transformer width (teacher default 40, student 64)
  int64_t layers = 4;
  int64_t heads = 8;
  int64_t conv_kernel = 3;  ///< Conv1D projection kernel (odd; padding (k-1)/2 keeps length)
  Readout readout = Readout::kLast;
  OutputMode output = OutputMode::kClassification;
  int64_t num_classes = 7;  ///< classification only; regression has 1 output
  double attn_dropout = 0.1;
  double relu_dropout = 0.1;
  double res_dropout = 0.1;
  double embed_dropout = 0.25;
  double out_dropout = 0.0;
  /// Attention dropout of the cross-modal transformers whose keys come from audio / video
  /// (MulT's attn_dropout_a / attn_dropout_v); unset = attn_dropout.
  std::optional<double> attn_dropout_audio;
  std::optional<double> attn_dropout_video;
  bool future_mask = true;                        ///< MulT's triu(-inf, 1+|Tk-Tq|) mask
  bool mask_padding = true;                       ///< all-zero input steps are excluded as keys
  ProxyMode proxy_mode = ProxyMode::kDownsample;  ///< student only
  /// Student, downsample mode: [audio, text] lengths of A_S, L_S; empty = the data's lengths.
  std::vector<int64_t> target_lengths;
  /// Student, keep mode: odd kernels of the V_S, A_S, L_S convolutions; empty = conv_kernel x3.
  std::vector<int64_t> proxy_kernels;
  Compat compat = Compat::kMmkd;

  bool mult_compat() const { return compat == Compat::kMult; }
  /// Layers of a branch memory: `layers`, or MulT's max(layers, 3) in the MulT mode.
  int64_t memory_layers() const;
  /// Attention dropout of a transformer whose keys come from `key` (self-attention and memories
  /// use attn_dropout).
  double attn_dropout_for(data::Modality key, bool self_attention) const;

  /// Number of outputs of the final layer: num_classes, or 1 in regression mode.
  int64_t output_dim() const { return output == OutputMode::kRegression ? 1 : num_classes; }
  /// Canonical architecture name: teacher complete|video|audio|language; student
  /// complete|video|language|audio|language_audio.
  std::string architecture_name() const;
  /// A one-line description, e.g. "student 5 (language_audio) d=64 layers=4 heads=8".
  std::string describe() const;
  /// Throws mmkd::Error on inconsistent values (d_model % heads, dropout ranges, ...).
  void validate(const std::string& path = "model") const;
};

/// Parses the `model` mapping (`node` is that mapping, `path` its key path for messages, e.g.
/// "model"). Unknown keys are refused with the closest valid key suggested. `architecture`
/// accepts the names above or, for students, 1..5. d_model defaults to 40 (teacher) / 64 (student).
ModelConfig parse_model_config(const YAML::Node& node, const std::string& path = "model");

/// Reads the top-level `model:` key of a YAML config file, its `include:`s resolved as for every
/// command (load_config_file); other top-level keys are ignored.
ModelConfig load_model_config(const std::string& file);

/// Sequence lengths and feature sizes of the inputs, indexed by data::modality_index (V, A, L).
struct InputShape {
  std::array<int64_t, 3> len{16, 16, 8};
  std::array<int64_t, 3> dim{35, 74, 300};

  /// Tests: lengths 16/16/8, MOSEI dims.
  static InputShape tiny();
  /// CMU-MOSEI unaligned (MulT features): lengths 500/500/50, dims 35/74/300.
  static InputShape mosei();
  /// "tiny", "mosei" or "Tv,Ta,Tl" (MOSEI dims).
  static InputShape parse(const std::string& text);
  std::string describe() const;
};

}  // namespace mmkd::models
