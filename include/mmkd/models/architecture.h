// The transformers of every teacher and student architecture and their names in the paper's
// notation (`Y<-X`: queries from X, keys/values from Y; `mem:X` the memory of X's branch).
#pragma once

#include <string>
#include <vector>

#include "mmkd/data/modality.h"
#include "mmkd/models/model_config.h"

namespace mmkd::models {

using data::Modality;

/// One readout group: transformers `keys[i] <- query` (queries from `query`), then, when
/// `memory`, their outputs concatenated on features into the self-attention transformer
/// `mem:<query>` of width keys.size()*d. The group's output (memory or the single transformer)
/// is read out (last or mean step) and concatenated with the other groups' for the head.
struct Stage {
  Modality query;
  std::vector<Modality> keys;
  bool memory;
};

/// One transformer of a network.
struct TransformerSpec {
  std::string name;      ///< "A<-V", "V<-V", "mem:V"
  Modality query;        ///< where queries come from (for mem:X, X's branch)
  Modality key;          ///< where keys/values come from (mem: same as query)
  bool memory;           ///< a branch memory (self-attention over the concatenated branch)
  int64_t width_factor;  ///< width in units of d (2 for a memory over two transformers)
  bool read_out;         ///< its output goes to the readout (a memory, or a stage without one)
};

/// "K<-Q": queries from q, keys/values from k.
std::string transformer_name(Modality key, Modality query);
/// "mem:Q".
std::string memory_name(Modality query);
/// Module names in state dicts, MulT style (letters v, a, l): K<-Q is "trans_q_with_k", mem:Q
/// is "trans_q_mem".
std::string module_name(Modality key, Modality query);
std::string memory_module_name(Modality query);

std::vector<Stage> teacher_stages(TeacherArch arch);
std::vector<Stage> student_stages(StudentArch arch);
std::vector<Stage> stages(const ModelConfig& config);

/// Every transformer of the stages, in execution order.
std::vector<TransformerSpec> transformer_specs(const std::vector<Stage>& stages);
std::vector<std::string> transformer_names(const std::vector<Stage>& stages);

std::string teacher_arch_name(TeacherArch arch);  ///< complete|video|audio|language
std::string student_arch_name(StudentArch arch);  ///< complete|video|language|audio|language_audio
/// The paper's wording: "Complete Teacher Network", "Video Branch", ...
std::string teacher_arch_title(TeacherArch arch);
std::string student_arch_title(StudentArch arch);

}  // namespace mmkd::models
