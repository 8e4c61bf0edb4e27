// Strict parsing of the `model:` section and the shipped configs/models/*.yaml.
#include "mmkd/models/model_config.h"

#include <gtest/gtest.h>

#include "mmkd/core/error.h"
#include "mmkd/models/model_config_yaml.h"
#include "mmkd/models/multimodal_net.h"
#include "mmkd/models/parameter_count.h"

// Inside mmkd::models, not a using-directive: in a unity build a directive would reach the
// files compiled after this one.
namespace mmkd::models {
namespace {

const std::string kConfigDir = std::string(MMKD_FIXTURES_DIR) + "/../../configs/models/";

std::string model_error_of(const std::string& yaml) {
  try {
    parse_model_config(YAML::Load(yaml)["model"], "model");
  } catch (const mmkd::Error& e) {
    return e.what();
  }
  return "";
}

TEST(ModelConfig, ShippedConfigsParseAndBuild) {
  for (const auto* name :
       {"teacher_complete", "teacher_video", "teacher_audio", "teacher_language"}) {
    const auto config = load_model_config(kConfigDir + name + ".yaml");
    EXPECT_EQ(config.role, Role::kTeacher) << name;
    EXPECT_EQ(config.d_model, 40);
    EXPECT_EQ(std::string("teacher_") + config.architecture_name(), name);
  }
  for (int i = 1; i <= 5; ++i) {
    const auto config = load_model_config(kConfigDir + "student_" + std::to_string(i) + ".yaml");
    EXPECT_EQ(config.role, Role::kStudent);
    EXPECT_EQ(static_cast<int>(config.student_arch), i);
    EXPECT_EQ(config.d_model, 64);
    EXPECT_EQ(config.proxy_mode, ProxyMode::kDownsample);
  }
  auto student = build_model(load_model_config(kConfigDir + "student_5.yaml"), InputShape::tiny());
  EXPECT_EQ(student->transformer_names().size(), 3u);
}

TEST(ModelConfig, DefaultsAndNumericArchitecture) {
  const auto teacher = parse_model_config(YAML::Load("{role: teacher}"));
  EXPECT_EQ(teacher.teacher_arch, TeacherArch::kComplete);
  EXPECT_EQ(teacher.d_model, 40);
  EXPECT_EQ(teacher.conv_kernel, 3);
  EXPECT_TRUE(teacher.future_mask);
  EXPECT_TRUE(teacher.mask_padding);
  EXPECT_DOUBLE_EQ(teacher.embed_dropout, 0.25);
  const auto student = parse_model_config(YAML::Load("{role: student, architecture: 3}"));
  EXPECT_EQ(student.student_arch, StudentArch::kLanguage);
  EXPECT_EQ(student.d_model, 64);
  const auto regression = parse_model_config(YAML::Load(
      "{role: student, architecture: LANGUAGE_AUDIO, output: regression, readout: mean}"));
  EXPECT_EQ(regression.output_dim(), 1);
  EXPECT_EQ(regression.readout, Readout::kMean);
}

TEST(ModelConfig, RejectsWithPreciseMessages) {
  EXPECT_NE(
      model_error_of("model: {role: teacher, d_modle: 40}").find("did you mean 'model.d_model'"),
      std::string::npos);
  EXPECT_NE(model_error_of("model: {role: teacher, d_model: 30, heads: 8}").find("not divisible"),
            std::string::npos);
  EXPECT_NE(
      model_error_of("model: {role: teacher, architecture: vidoe}").find("did you mean 'video'"),
      std::string::npos);
  EXPECT_NE(model_error_of("model: {role: student, architecture: 6}").find("model.architecture"),
            std::string::npos);
  EXPECT_NE(model_error_of("model: {architecture: video}").find("model.role"), std::string::npos);
  EXPECT_NE(model_error_of("model: {role: teacher, conv_kernel: 2}").find("odd"),
            std::string::npos);
  EXPECT_NE(model_error_of("model: {role: teacher, attn_dropout: 1.5}").find("model.attn_dropout"),
            std::string::npos);
  EXPECT_NE(model_error_of("model: {role: teacher, proxy_mode: keep}").find("only a student"),
            std::string::npos);
  EXPECT_NE(model_error_of("model: {role: student, target_lengths: [5]}").find("two positive"),
            std::string::npos);
  EXPECT_NE(
      model_error_of("model: {role: student, proxy_kernels: [3, 3, 3]}").find("proxy_mode keep"),
      std::string::npos);
  EXPECT_NE(model_error_of("model: {role: teacher, layers: many}").find("an integer"),
            std::string::npos);
}

TEST(ModelConfig, InputShapes) {
  EXPECT_EQ(InputShape::parse("tiny").len, (std::array<int64_t, 3>{16, 16, 8}));
  EXPECT_EQ(InputShape::parse("mosei").len, (std::array<int64_t, 3>{500, 500, 50}));
  const auto custom = InputShape::parse("100,80,20");
  EXPECT_EQ(custom.len, (std::array<int64_t, 3>{100, 80, 20}));
  EXPECT_EQ(custom.dim, (std::array<int64_t, 3>{35, 74, 300}));
  EXPECT_THROW(InputShape::parse("100,80"), mmkd::Error);
  EXPECT_THROW(InputShape::parse("100,x,20"), mmkd::Error);
  EXPECT_THROW(InputShape::parse("1,2,3,4"), mmkd::Error);
}

TEST(ModelConfig, TheMultModeChangesConventionsNotTheDefaults) {
  const auto own = parse_model_config(YAML::Load("{role: teacher}"), "model");
  EXPECT_EQ(own.compat, Compat::kMmkd);
  EXPECT_FALSE(to_yaml(own)["compat"]);  // resolved configs of existing runs stay as they were
  const auto mult = load_model_config(kConfigDir + "teacher_mult.yaml");
  EXPECT_TRUE(mult.mult_compat());
  EXPECT_FALSE(mult.mask_padding);
  EXPECT_EQ(to_yaml(mult)["compat"].as<std::string>(), "mult");
  EXPECT_EQ(parse_model_config(to_yaml(mult), "model").describe(), mult.describe());
  // MulT's memories have max(layers, 3) layers; mmkd's have `layers`.
  ModelConfig two = mult;
  two.layers = 2;
  EXPECT_EQ(two.memory_layers(), 3);
  two.compat = Compat::kMmkd;
  two.mask_padding = true;
  EXPECT_EQ(two.memory_layers(), 2);
  // Attention dropout by the keys' modality (MulT's attn_dropout_a / attn_dropout_v).
  EXPECT_EQ(mult.attn_dropout_for(mmkd::data::Modality::kAudio, false), 0.0);
  EXPECT_EQ(mult.attn_dropout_for(mmkd::data::Modality::kVideo, false), 0.0);
  EXPECT_EQ(mult.attn_dropout_for(mmkd::data::Modality::kText, false), 0.1);
  EXPECT_EQ(mult.attn_dropout_for(mmkd::data::Modality::kAudio, true), 0.1);  // a memory
  EXPECT_NE(model_error_of("model: {role: teacher, compat: mult}")
                .find("config key 'model.mask_padding': must be false with compat: mult"),
            std::string::npos);
  EXPECT_NE(
      model_error_of("model: {role: teacher, compat: mulT2}").find("valid values: mmkd, mult"),
      std::string::npos);
  EXPECT_NE(model_error_of("model: {role: teacher, attn_dropout_video: 1}")
                .find("model.attn_dropout_video"),
            std::string::npos);
}

TEST(ModelConfig, TheMultModeOrdersBranchesAndSizesMemoriesAsMult) {
  ModelConfig config = load_model_config(kConfigDir + "teacher_mult.yaml");
  config.layers = 2;
  auto net = build_model(config, InputShape::tiny());
  // MulT: branches L, A, V; in each, [X<-first other, X<-second other] as trans_x_with_l/a/v.
  EXPECT_EQ(net->transformer_names(),
            (std::vector<std::string>{"A<-L", "V<-L", "mem:L", "L<-A", "V<-A", "mem:A", "L<-V",
                                      "A<-V", "mem:V"}));
  EXPECT_EQ(net->geometry().transformer("mem:V").layers, 3);
  EXPECT_EQ(net->geometry().transformer("V<-A").layers, 2);
  EXPECT_EQ(net->parameter_count(), teacher_parameter_count(config, InputShape::tiny()));
  // Students 2-5 have no MulT counterpart and keep mmkd's order.
  auto student =
      parse_model_config(YAML::Load("{role: student, compat: mult, mask_padding: false}"), "model");
  EXPECT_EQ(build_model(student, InputShape::tiny())->transformer_names(),
            (std::vector<std::string>{"V<-V", "V<-L", "V<-A"}));
  // A kernel-1 projection whose input already has width d is skipped, as MulT's forward does.
  config.d_model = 35;
  config.heads = 5;
  config.conv_kernel = 1;
  auto identity = build_model(config, InputShape::tiny());  // video features are 35 wide
  EXPECT_TRUE(identity->geometry().sequences[0].identity);
  EXPECT_FALSE(identity->geometry().sequences[1].identity);
  EXPECT_EQ(identity->named_children().find("proj_v"), nullptr);
  EXPECT_EQ(identity->parameter_count(), teacher_parameter_count(config, InputShape::tiny()));
}

}  // namespace
}  // namespace mmkd::models
