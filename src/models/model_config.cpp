#include "mmkd/models/model_config.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "mmkd/core/config_file.h"
#include "mmkd/core/error.h"
#include "mmkd/core/yaml_config.h"
#include "mmkd/models/architecture.h"

namespace mmkd::models {

namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

template <typename Enum>
Enum parse_choice(const std::string& value,
                  const std::vector<std::pair<std::string, Enum>>& choices,
                  const std::string& key) {
  const auto wanted = lower(value);
  std::vector<std::string> names;
  for (const auto& [name, e] : choices) {
    if (name == wanted) return e;
    names.push_back(name);
  }
  std::string valid;
  for (const auto& name : names) valid += (valid.empty() ? "" : ", ") + name;
  const auto suggestion = closest_match(wanted, names);
  MMKD_FAIL("config key '", key, "': unknown value '", value, "'",
            suggestion.empty() ? "" : " (did you mean '" + suggestion + "'?)",
            "; valid values: ", valid);
}

const std::vector<std::pair<std::string, TeacherArch>> kTeacherArchs = {
    {"complete", TeacherArch::kComplete},
    {"video", TeacherArch::kVideoBranch},
    {"audio", TeacherArch::kAudioBranch},
    {"language", TeacherArch::kLanguageBranch},
};

const std::vector<std::pair<std::string, StudentArch>> kStudentArchs = {
    {"complete", StudentArch::kComplete},
    {"1", StudentArch::kComplete},
    {"video", StudentArch::kVideo},
    {"2", StudentArch::kVideo},
    {"language", StudentArch::kLanguage},
    {"3", StudentArch::kLanguage},
    {"audio", StudentArch::kAudio},
    {"4", StudentArch::kAudio},
    {"language_audio", StudentArch::kLanguageAudio},
    {"5", StudentArch::kLanguageAudio},
};

void check_dropout_key(double p, const std::string& key) {
  MMKD_CHECK(p >= 0 && p < 1, "config key '", key,
             "': a dropout probability must be in [0,1), got ", p);
}

}  // namespace

int64_t ModelConfig::memory_layers() const {
  return mult_compat() ? std::max<int64_t>(layers, 3) : layers;
}

double ModelConfig::attn_dropout_for(data::Modality key, bool self_attention) const {
  if (self_attention) return attn_dropout;
  if (key == data::Modality::kAudio && attn_dropout_audio) return *attn_dropout_audio;
  if (key == data::Modality::kVideo && attn_dropout_video) return *attn_dropout_video;
  return attn_dropout;
}

std::string ModelConfig::architecture_name() const {
  return role == Role::kTeacher ? teacher_arch_name(teacher_arch) : student_arch_name(student_arch);
}

std::string ModelConfig::describe() const {
  std::ostringstream out;
  if (role == Role::kTeacher) {
    out << "teacher " << architecture_name();
  } else {
    out << "student " << static_cast<int>(student_arch) << " (" << architecture_name() << ")";
  }
  out << " d=" << d_model << " layers=" << layers << " heads=" << heads << " kernel=" << conv_kernel
      << " readout=" << (readout == Readout::kLast ? "last" : "mean") << " output="
      << (output == OutputMode::kRegression ? "regression"
                                            : std::to_string(num_classes) + "-class");
  if (role == Role::kStudent) {
    out << " proxies=" << (proxy_mode == ProxyMode::kDownsample ? "downsample" : "keep");
  }
  if (mult_compat()) out << " compat=mult";
  return out.str();
}

void ModelConfig::validate(const std::string& path) const {
  const auto key = [&](const char* k) { return join_key(path, k); };
  MMKD_CHECK(d_model > 0, "config key '", key("d_model"), "': must be positive, got ", d_model);
  MMKD_CHECK(heads > 0, "config key '", key("heads"), "': must be positive, got ", heads);
  MMKD_CHECK(d_model % heads == 0, "config key '", key("d_model"), "': ", d_model,
             " is not divisible by heads = ", heads);
  MMKD_CHECK(layers >= 1, "config key '", key("layers"), "': must be >= 1, got ", layers);
  MMKD_CHECK(conv_kernel >= 1 && conv_kernel % 2 == 1, "config key '", key("conv_kernel"),
             "': must be an odd positive integer (padding (k-1)/2 keeps the length), got ",
             conv_kernel);
  MMKD_CHECK(output == OutputMode::kRegression || num_classes >= 2, "config key '",
             key("num_classes"), "': must be >= 2, got ", num_classes);
  check_dropout_key(attn_dropout, key("attn_dropout"));
  check_dropout_key(relu_dropout, key("relu_dropout"));
  check_dropout_key(res_dropout, key("res_dropout"));
  check_dropout_key(embed_dropout, key("embed_dropout"));
  check_dropout_key(out_dropout, key("out_dropout"));
  if (attn_dropout_audio) check_dropout_key(*attn_dropout_audio, key("attn_dropout_audio"));
  if (attn_dropout_video) check_dropout_key(*attn_dropout_video, key("attn_dropout_video"));
  // MulT attends to padded steps; a mask would silently change what an imported model computes.
  MMKD_CHECK(!(mult_compat() && mask_padding), "config key '", key("mask_padding"),
             "': must be false with compat: mult (MulT attends to padded steps; "
             "configs/models/teacher_mult.yaml sets both)");
  if (role == Role::kTeacher) {
    MMKD_CHECK(target_lengths.empty(), "config key '", key("target_lengths"),
               "': only a student has proxies");
    MMKD_CHECK(proxy_kernels.empty(), "config key '", key("proxy_kernels"),
               "': only a student has proxies");
    return;
  }
  if (!target_lengths.empty()) {
    MMKD_CHECK(proxy_mode == ProxyMode::kDownsample, "config key '", key("target_lengths"),
               "': only used with proxy_mode downsample");
    MMKD_CHECK(target_lengths.size() == 2 && target_lengths[0] > 0 && target_lengths[1] > 0,
               "config key '", key("target_lengths"),
               "': expected [audio_length, text_length], two positive integers");
  }
  if (!proxy_kernels.empty()) {
    MMKD_CHECK(proxy_mode == ProxyMode::kKeep, "config key '", key("proxy_kernels"),
               "': only used with proxy_mode keep (downsample derives kernels from lengths)");
    MMKD_CHECK(proxy_kernels.size() == 3, "config key '", key("proxy_kernels"),
               "': expected three kernels [V_S, A_S, L_S]");
    for (auto k : proxy_kernels) {
      MMKD_CHECK(k >= 1 && k % 2 == 1, "config key '", key("proxy_kernels"),
                 "': kernels must be odd positive integers, got ", k);
    }
  }
}

ModelConfig parse_model_config(const YAML::Node& node, const std::string& path) {
  MMKD_CHECK(node && node.IsMap(), "config key '", path, "': expected a mapping");
  check_known_keys(node,
                   {"role",
                    "architecture",
                    "d_model",
                    "layers",
                    "heads",
                    "conv_kernel",
                    "readout",
                    "output",
                    "num_classes",
                    "attn_dropout",
                    "relu_dropout",
                    "res_dropout",
                    "embed_dropout",
                    "out_dropout",
                    "future_mask",
                    "mask_padding",
                    "proxy_mode",
                    "target_lengths",
                    "proxy_kernels",
                    "compat",
                    "attn_dropout_audio",
                    "attn_dropout_video"},
                   path);
  ModelConfig config;
  std::string role;
  read_optional(node, "role", path, role);
  MMKD_CHECK(!role.empty(), "config key '", join_key(path, "role"),
             "' is required: teacher or student");
  config.role = parse_choice<Role>(role, {{"teacher", Role::kTeacher}, {"student", Role::kStudent}},
                                   join_key(path, "role"));
  config.d_model = config.role == Role::kTeacher ? 40 : 64;

  std::string arch = config.role == Role::kTeacher ? "complete" : "language_audio";
  read_optional(node, "architecture", path, arch);
  if (config.role == Role::kTeacher) {
    config.teacher_arch = parse_choice(arch, kTeacherArchs, join_key(path, "architecture"));
  } else {
    config.student_arch = parse_choice(arch, kStudentArchs, join_key(path, "architecture"));
  }
  read_optional(node, "d_model", path, config.d_model);
  read_optional(node, "layers", path, config.layers);
  read_optional(node, "heads", path, config.heads);
  read_optional(node, "conv_kernel", path, config.conv_kernel);
  std::string readout = "last";
  read_optional(node, "readout", path, readout);
  config.readout = parse_choice<Readout>(
      readout, {{"last", Readout::kLast}, {"mean", Readout::kMean}}, join_key(path, "readout"));
  std::string output = "classification";
  read_optional(node, "output", path, output);
  config.output = parse_choice<OutputMode>(
      output,
      {{"classification", OutputMode::kClassification}, {"regression", OutputMode::kRegression}},
      join_key(path, "output"));
  read_optional(node, "num_classes", path, config.num_classes);
  read_optional(node, "attn_dropout", path, config.attn_dropout);
  read_optional(node, "relu_dropout", path, config.relu_dropout);
  read_optional(node, "res_dropout", path, config.res_dropout);
  read_optional(node, "embed_dropout", path, config.embed_dropout);
  read_optional(node, "out_dropout", path, config.out_dropout);
  for (auto [name, slot] : {std::pair{"attn_dropout_audio", &config.attn_dropout_audio},
                            std::pair{"attn_dropout_video", &config.attn_dropout_video}}) {
    if (!node[name]) continue;
    double p = 0;
    read_optional(node, name, path, p);
    *slot = p;
  }
  read_optional(node, "future_mask", path, config.future_mask);
  read_optional(node, "mask_padding", path, config.mask_padding);
  if (node["proxy_mode"]) {
    MMKD_CHECK(config.role == Role::kStudent, "config key '", join_key(path, "proxy_mode"),
               "': only a student has proxies");
    std::string mode;
    read_optional(node, "proxy_mode", path, mode);
    config.proxy_mode = parse_choice<ProxyMode>(
        mode, {{"downsample", ProxyMode::kDownsample}, {"keep", ProxyMode::kKeep}},
        join_key(path, "proxy_mode"));
  }
  read_optional(node, "target_lengths", path, config.target_lengths);
  read_optional(node, "proxy_kernels", path, config.proxy_kernels);
  std::string compat = "mmkd";
  read_optional(node, "compat", path, compat);
  config.compat = parse_choice<Compat>(compat, {{"mmkd", Compat::kMmkd}, {"mult", Compat::kMult}},
                                       join_key(path, "compat"));
  config.validate(path);
  return config;
}

ModelConfig load_model_config(const std::string& file) {
  // The loader every command uses, so `include:` composes here too (configs/student_5.yaml).
  const YAML::Node root = load_config_file(file);
  MMKD_CHECK(root.IsMap() && root["model"], "config file '", file,
             "': expected a top-level 'model:' section");
  try {
    return parse_model_config(root["model"], "model");
  } catch (const Error& e) {
    MMKD_FAIL(file, ": ", e.what());
  }
}

InputShape InputShape::tiny() { return InputShape{{16, 16, 8}, {35, 74, 300}}; }

InputShape InputShape::mosei() { return InputShape{{500, 500, 50}, {35, 74, 300}}; }

InputShape InputShape::parse(const std::string& text) {
  const auto name = lower(text);
  if (name == "tiny") return tiny();
  if (name == "mosei") return mosei();
  InputShape shape = mosei();
  std::stringstream in(text);
  std::string part;
  size_t i = 0;
  while (std::getline(in, part, ',')) {
    MMKD_CHECK(i < 3, "shape '", text, "': expected tiny, mosei or three lengths Tv,Ta,Tl");
    try {
      size_t used = 0;
      shape.len[i] = std::stoll(part, &used);
      MMKD_CHECK(used == part.size() && shape.len[i] > 0, "");
    } catch (const std::exception&) {
      MMKD_FAIL("shape '", text, "': '", part, "' is not a positive length (expected tiny, mosei ",
                "or Tv,Ta,Tl)");
    }
    ++i;
  }
  MMKD_CHECK(i == 3, "shape '", text, "': expected tiny, mosei or three lengths Tv,Ta,Tl");
  return shape;
}

std::string InputShape::describe() const {
  std::ostringstream out;
  const char* letters[3] = {"V", "A", "L"};
  for (size_t m = 0; m < 3; ++m) {
    out << (m ? ", " : "") << letters[m] << " " << len[m] << "x" << dim[m];
  }
  return out.str();
}

}  // namespace mmkd::models
