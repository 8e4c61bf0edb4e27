#include "mmkd/models/mult_import.h"

#include <algorithm>
#include <map>
#include <set>

#include "mmkd/core/error.h"
#include "mmkd/core/shape_text.h"

namespace mmkd::models {

namespace {

using data::Modality;
using data::StateDict;
using Tensors = std::map<std::string, torch::Tensor>;

/// MulT's branch letters in its own order, with the mmkd modality and teacher each stands for.
struct Branch {
  char letter;
  Modality modality;
  TeacherArch arch;
};
constexpr Branch kBranches[3] = {{'l', Modality::kText, TeacherArch::kLanguageBranch},
                                 {'a', Modality::kAudio, TeacherArch::kAudioBranch},
                                 {'v', Modality::kVideo, TeacherArch::kVideoBranch}};

bool has_prefix(const Tensors& tensors, const std::string& prefix) {
  const auto it = tensors.lower_bound(prefix);
  return it != tensors.end() && it->first.rfind(prefix, 0) == 0;
}

const torch::Tensor& require(const Tensors& tensors, const std::string& key, int64_t dims) {
  const auto it = tensors.find(key);
  MMKD_CHECK(it != tensors.end(), "missing key '", key, "'; is this a MulT state dict?");
  MMKD_CHECK(it->second.dim() == dims, "'", key, "' has shape ", shape_text(it->second),
             ", expected ", dims, " dimensions");
  return it->second;
}

/// Layers of the encoder at `module`: its `layers.N.` indices, which must be 0..n-1.
int64_t count_layers(const Tensors& tensors, const std::string& module) {
  const std::string prefix = module + ".layers.";
  std::set<int64_t> indices;
  for (auto it = tensors.lower_bound(prefix); it != tensors.end(); ++it) {
    if (it->first.rfind(prefix, 0) != 0) break;
    const std::string rest = it->first.substr(prefix.size());
    const auto dot = rest.find('.');
    const std::string index = rest.substr(0, dot);
    MMKD_CHECK(
        !index.empty() && index.size() <= 4 && std::all_of(index.begin(), index.end(), ::isdigit),
        "unexpected key '", it->first, "'");
    indices.insert(std::stoll(index));
  }
  MMKD_CHECK(!indices.empty(), "missing key '", prefix, "0...' (", module, " has no layers)");
  MMKD_CHECK(*indices.rbegin() + 1 == static_cast<int64_t>(indices.size()), module,
             " has layers numbered up to ", *indices.rbegin(), " but only ", indices.size(),
             " of them");
  return static_cast<int64_t>(indices.size());
}

std::string cross_module(char query, char key) {
  return std::string("trans_") + query + "_with_" + key;
}

/// The branches whose cross-modal transformers are in the state dict.
std::vector<Branch> present_branches(const Tensors& tensors) {
  std::vector<Branch> present;
  for (const auto& branch : kBranches) {
    std::vector<std::string> have, lack;
    for (const auto& other : kBranches) {
      if (other.letter == branch.letter) continue;
      const auto module = cross_module(branch.letter, other.letter);
      (has_prefix(tensors, module + ".") ? have : lack).push_back(module);
    }
    if (have.empty()) continue;
    MMKD_CHECK(lack.empty(), "has ", have[0], " but not ", lack[0],
               " (a MulT branch has both cross-modal transformers)");
    present.push_back(branch);
  }
  MMKD_CHECK(!present.empty(),
             "holds none of MulT's cross-modal transformers (trans_l_with_a, trans_v_with_a, ...); "
             "is this a MulT state dict?");
  MMKD_CHECK(present.size() != 2,
             "holds two MulT branches; mmkd's teachers have one (video, "
             "audio or language branch) or all three (complete)");
  return present;
}

/// The configuration a MulT state dict describes.
ModelConfig infer_config(const Tensors& tensors, const MultImportOptions& options,
                         InputShape& shape) {
  const auto branches = present_branches(tensors);
  ModelConfig config = options.base;
  config.role = Role::kTeacher;
  config.teacher_arch = branches.size() == 3 ? TeacherArch::kComplete : branches[0].arch;
  const char q = branches[0].letter;
  const char k = q == 'l' ? 'a' : 'l';
  const std::string first = cross_module(q, k);
  const auto& in_proj = require(tensors, first + ".layers.0.self_attn.in_proj_weight", 2);
  const int64_t d = in_proj.size(1);
  MMKD_CHECK(in_proj.size(0) == 3 * d, "'", first, ".layers.0.self_attn.in_proj_weight' has shape ",
             shape_text(in_proj), ", expected [3d, d]");
  config.d_model = d;
  config.layers = count_layers(tensors, first);
  MMKD_CHECK(options.heads > 0,
             "the number of heads is not recorded in a state dict: give it (MulT's --num_heads)");
  MMKD_CHECK(d % options.heads == 0, "width ", d, " (from ", first,
             ") is not divisible by the given number of heads, ", options.heads);
  config.heads = options.heads;
  const int64_t memory_layers = std::max<int64_t>(config.layers, 3);
  for (const auto& branch : branches) {
    const std::string memory = std::string("trans_") + branch.letter + "_mem";
    const int64_t got = count_layers(tensors, memory);
    MMKD_CHECK(got == memory_layers, memory, " has ", got, " layers; MulT's code gives a memory ",
               "max(layers, 3) = ", memory_layers, " for ", config.layers, "-layer transformers");
  }
  const auto& out = require(tensors, "out_layer.weight", 2);
  config.output = out.size(0) == 1 ? OutputMode::kRegression : OutputMode::kClassification;
  if (out.size(0) > 1) config.num_classes = out.size(0);
  int64_t kernel = 0;
  for (size_t m = 0; m < 3; ++m) {
    const std::string key = std::string("proj_") + kBranches[2 - m].letter + ".weight";  // v, a, l
    const auto& weight = require(tensors, key, 3);
    MMKD_CHECK(weight.size(0) == d, "'", key, "' has shape ", shape_text(weight), ", expected [", d,
               ", features, kernel]");
    MMKD_CHECK(kernel == 0 || weight.size(2) == kernel, "'", key, "' has kernel ", weight.size(2),
               ", the other projections ", kernel);
    kernel = weight.size(2);
    shape.dim[m] = weight.size(1);
  }
  config.conv_kernel = kernel;
  config.readout = Readout::kLast;
  config.compat = Compat::kMult;
  config.mask_padding = false;
  config.validate("model");
  return config;
}

/// MulT tensors that have no mmkd counterpart but are expected in a MulT state dict.
bool ignorable(const std::string& key, const ModelGeometry& geometry,
               const std::set<std::string>& modules) {
  const auto dot = key.find('.');
  const std::string module = key.substr(0, dot);
  if (key.size() > 8 && key.compare(key.size() - 8, 8, ".version") == 0) return true;
  if (key.find(".embed_positions._float_tensor") != std::string::npos) return true;
  // MulT registers all three memories even with one branch.
  if (module.size() == 11 && module.rfind("trans_", 0) == 0 && module.compare(7, 4, "_mem") == 0 &&
      modules.count(module) == 0)
    return true;
  for (const auto& p : geometry.sequences)
    if (p.identity && key == p.module + ".weight") return true;
  return false;
}

template <typename Items>
std::string listing(const Items& items) {
  std::string text;
  size_t shown = 0;
  for (const auto& item : items) {
    if (shown++ == 12) return text + " (and " + std::to_string(items.size() - 12) + " more)";
    text += (text.empty() ? "" : ", ") + item;
  }
  return text;
}

}  // namespace

std::string mult_key(const std::string& mmkd_name) {
  std::string key = mmkd_name.rfind("head.", 0) == 0 ? mmkd_name.substr(5) : mmkd_name;
  for (const char* norm : {".layer_norm0.", ".layer_norm1."}) {
    const auto at = key.find(norm);
    if (at != std::string::npos) key.replace(at, 13, std::string(".layer_norms.") + norm[11] + ".");
  }
  return key;
}

MultImport import_mult(const StateDict& state_dict, const MultImportOptions& options,
                       const std::string& source) {
  try {
    Tensors tensors;
    for (const auto& [key, tensor] : state_dict) tensors[key] = tensor;
    MultImport result;
    result.shape = options.shape;
    result.config = infer_config(tensors, options, result.shape);
    result.model = build_model(result.config, result.shape);
    const ModelGeometry& geometry = result.model->geometry();
    std::set<std::string> modules;
    for (const auto& t : geometry.transformers) modules.insert(t.module);

    std::vector<std::string> missing, wrong;
    std::set<std::string> used;
    torch::NoGradGuard no_grad;
    for (auto& item : result.model->named_parameters()) {
      const std::string key = mult_key(item.key());
      const auto it = tensors.find(key);
      if (it == tensors.end()) {
        missing.push_back(key);
        continue;
      }
      used.insert(key);
      const torch::Tensor& tensor = it->second;
      if (tensor.sizes() != item.value().sizes()) {
        wrong.push_back(key + " " + shape_text(tensor) + " (expected " + shape_text(item.value()) +
                        ")");
        continue;
      }
      MMKD_CHECK(tensor.is_floating_point(), "'", key, "' holds ",
                 c10::toString(tensor.scalar_type()), " values, expected floating point");
      MMKD_CHECK(torch::isfinite(tensor).all().item<bool>(), "'", key,
                 "' holds non-finite values (NaN or inf)");
      item.value().copy_(tensor.to(item.value().dtype()));
    }
    std::vector<std::string> unexpected;
    for (const auto& [key, tensor] : tensors) {
      if (used.count(key) != 0) continue;
      (ignorable(key, geometry, modules) ? result.ignored : unexpected).push_back(key);
    }
    MMKD_CHECK(missing.empty() && unexpected.empty() && wrong.empty(), "does not fit a MulT ",
               result.config.describe(), ":",
               missing.empty() ? "" : " missing keys: " + listing(missing) + ";",
               unexpected.empty() ? "" : " unexpected keys: " + listing(unexpected) + ";",
               wrong.empty() ? "" : " wrong shapes: " + listing(wrong) + ";");
    result.model->eval();
    return result;
  } catch (const Error& e) {
    MMKD_FAIL(source, ": ", e.what());
  }
}

}  // namespace mmkd::models
