// The typed geometry against what the built network actually computes: every transformer's map
// and output shape from a forward pass, the projections' weights, the head's widths.
#include <gtest/gtest.h>

#include "mmkd/core/error.h"
#include "mmkd/models/model_geometry.h"
#include "mmkd/models/multimodal_net.h"

// Inside mmkd::models, not a using-directive: in a unity build a directive would reach the
// files compiled after this one.
namespace mmkd::models {
namespace {

// `arch`: a TeacherArch (0..3) or a StudentArch, numbered as the paper's configurations (1..5).
ModelConfig config_of(Role role, int arch) {
  ModelConfig c;
  c.role = role;
  if (role == Role::kTeacher) c.teacher_arch = static_cast<TeacherArch>(arch);
  if (role == Role::kStudent) c.student_arch = static_cast<StudentArch>(arch);
  c.d_model = 8;
  c.layers = 2;
  c.heads = 2;
  return c;
}

// Every field of the geometry against a forward pass of the network built from it.
void check_against_forward(const ModelConfig& config, const InputShape& shape) {
  SCOPED_TRACE(config.describe());
  auto net = build_model(config, shape);
  net->eval();
  torch::NoGradGuard no_grad;
  ModelInputs inputs;
  for (size_t m = 0; m < 3; ++m) inputs.features[m] = torch::randn({2, shape.len[m], shape.dim[m]});
  const auto out = net->forward(inputs, TapRequest::all());
  const ModelGeometry& g = net->geometry();
  ASSERT_EQ(g.transformers.size(), out.taps.size());
  for (const auto& t : g.transformers) {
    SCOPED_TRACE(t.name);
    const auto& layers = out.taps.at(t.name);
    ASSERT_EQ(static_cast<int64_t>(layers.size()), t.layers);
    EXPECT_EQ(layers[0].map.sizes(), (std::vector<int64_t>{2, t.query_length, t.key_length}));
    EXPECT_EQ(layers[0].logits.size(1), t.heads);
    EXPECT_EQ(layers.back().output.sizes(), (std::vector<int64_t>{2, t.query_length, t.width}));
    EXPECT_EQ(net->transformer(t.name)->options.embed_dim(), t.width);
    EXPECT_TRUE(net->named_modules().contains(t.module));
  }
  EXPECT_EQ(out.penultimate.size(1), g.penultimate_dim());
  EXPECT_EQ(out.logits.size(1), g.output_dim);
  for (const auto& p : g.sequences) {
    SCOPED_TRACE(p.label);
    auto* conv = net->named_children()[p.module]->as<torch::nn::Conv1d>();
    ASSERT_NE(conv, nullptr);
    EXPECT_EQ(conv->weight.sizes(), (std::vector<int64_t>{p.width, p.in_dim, p.conv.kernel}));
    const auto y = conv->forward(torch::zeros({1, p.in_dim, p.in_length}));
    EXPECT_EQ(y.size(2), p.length);
  }
}

TEST(ModelGeometry, EveryArchitectureMatchesItsForwardPass) {
  for (int arch = 0; arch < 4; ++arch) check_against_forward(config_of(Role::kTeacher, arch), {});
  for (int arch = 1; arch <= 5; ++arch) check_against_forward(config_of(Role::kStudent, arch), {});
  auto keep = config_of(Role::kStudent, 5);
  keep.proxy_mode = ProxyMode::kKeep;
  check_against_forward(keep, InputShape::tiny());
}

TEST(ModelGeometry, HandComputedAtMoseiShapes) {
  // MulT's complete teacher: combined_dim = 2 (d_v + d_a + d_l) = 6d; L<-A attends 500 audio
  // queries over 50 text keys; mem:V is 2d wide.
  ModelConfig teacher = config_of(Role::kTeacher, 0);
  teacher.d_model = 40;
  const auto t = model_geometry(teacher, InputShape::mosei());
  EXPECT_EQ(t.readout_dim, 240);
  EXPECT_EQ(t.transformer("L<-A").map_shape(), (std::array<int64_t, 2>{500, 50}));
  EXPECT_EQ(t.transformer("mem:V").width, 80);
  EXPECT_TRUE(t.transformer("mem:V").self_attention());
  EXPECT_EQ(t.transformer("A<-V").module, "trans_v_with_a");
  EXPECT_EQ(t.sequences[2].in_dim, 300);
  // Student 5 (S-down): L_S is a stride-10 window of 10 video steps, so 500 -> 50.
  const auto s = model_geometry(config_of(Role::kStudent, 5), InputShape::mosei());
  EXPECT_EQ(s.lengths(), (std::array<int64_t, 3>{500, 500, 50}));
  EXPECT_EQ(s.sequences[2].conv.stride, 10);
  EXPECT_EQ(s.sequences[2].conv.kernel, 10);
  EXPECT_EQ(s.sequences[2].source, Modality::kVideo);
  EXPECT_EQ(s.sequences[2].label, "L_S");
  EXPECT_EQ(s.transformer("V<-L").map_shape(), (std::array<int64_t, 2>{50, 500}));  // L_S queries
}

TEST(ModelGeometry, UnknownTransformerNamesTheValidOnes) {
  const auto g = model_geometry(config_of(Role::kStudent, 5), InputShape::tiny());
  EXPECT_EQ(g.find("A<-V"), nullptr);
  try {
    g.transformer("A<-V");
    FAIL() << "no error";
  } catch (const mmkd::Error& e) {
    EXPECT_NE(std::string(e.what()).find("V<-V, V<-L, V<-A"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mmkd::models
