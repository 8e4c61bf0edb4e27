// Strict parsing of the `model:` section and the shipped configs/models/*.yaml.
#include "mmkd/models/model_config.h"

#include <gtest/gtest.h>

#include "mmkd/core/error.h"
#include "mmkd/models/multimodal_net.h"

namespace {

using namespace mmkd::models;

const std::string kConfigDir = std::string(MMKD_FIXTURES_DIR) + "/../../configs/models/";

std::string error_of(const std::string& yaml) {
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
  EXPECT_NE(error_of("model: {role: teacher, d_modle: 40}").find("did you mean 'model.d_model'"),
            std::string::npos);
  EXPECT_NE(error_of("model: {role: teacher, d_model: 30, heads: 8}").find("not divisible"),
            std::string::npos);
  EXPECT_NE(error_of("model: {role: teacher, architecture: vidoe}").find("did you mean 'video'"),
            std::string::npos);
  EXPECT_NE(error_of("model: {role: student, architecture: 6}").find("model.architecture"),
            std::string::npos);
  EXPECT_NE(error_of("model: {architecture: video}").find("model.role"), std::string::npos);
  EXPECT_NE(error_of("model: {role: teacher, conv_kernel: 2}").find("odd"), std::string::npos);
  EXPECT_NE(error_of("model: {role: teacher, attn_dropout: 1.5}").find("model.attn_dropout"),
            std::string::npos);
  EXPECT_NE(error_of("model: {role: teacher, proxy_mode: keep}").find("only a student"),
            std::string::npos);
  EXPECT_NE(error_of("model: {role: student, target_lengths: [5]}").find("two positive"),
            std::string::npos);
  EXPECT_NE(error_of("model: {role: student, proxy_kernels: [3, 3, 3]}").find("proxy_mode keep"),
            std::string::npos);
  EXPECT_NE(error_of("model: {role: teacher, layers: many}").find("an integer"), std::string::npos);
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

}  // namespace
