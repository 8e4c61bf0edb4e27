// Teachers and students: shapes of outputs and taps, parameter counts, proxies, padding, pairing.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>

#include "mmkd/core/error.h"
#include "mmkd/models/multimodal_net.h"
#include "mmkd/models/pairing.h"
#include "mmkd/models/parameter_count.h"
#include "mmkd/models/student.h"
#include "mmkd/models/teacher.h"

// Inside mmkd::models, not a using-directive: in a unity build a directive would reach the
// files compiled after this one.
namespace mmkd::models {
namespace {

const std::vector<TeacherArch> kTeachers = {TeacherArch::kComplete, TeacherArch::kVideoBranch,
                                            TeacherArch::kAudioBranch,
                                            TeacherArch::kLanguageBranch};
const std::vector<StudentArch> kStudents = {StudentArch::kComplete, StudentArch::kVideo,
                                            StudentArch::kLanguage, StudentArch::kAudio,
                                            StudentArch::kLanguageAudio};

ModelConfig teacher_config(TeacherArch arch, int64_t d = 8, int64_t layers = 2, int64_t heads = 2) {
  ModelConfig c;
  c.role = Role::kTeacher;
  c.teacher_arch = arch;
  c.d_model = d;
  c.layers = layers;
  c.heads = heads;
  return c;
}

ModelConfig student_config(StudentArch arch, int64_t d = 8, int64_t layers = 2, int64_t heads = 2) {
  ModelConfig c;
  c.role = Role::kStudent;
  c.student_arch = arch;
  c.d_model = d;
  c.layers = layers;
  c.heads = heads;
  return c;
}

ModelInputs random_inputs(const InputShape& shape, int64_t batch) {
  ModelInputs inputs;
  for (size_t m = 0; m < 3; ++m)
    inputs.features[m] = torch::randn({batch, shape.len[m], shape.dim[m]});
  return inputs;
}

// Checks logits, penultimate and every transformer's taps against the model's sequence table.
void check_shapes(MultimodalNet& net, const InputShape& shape, int64_t batch) {
  net->eval();
  torch::NoGradGuard no_grad;
  const auto out = net->forward(random_inputs(shape, batch), TapRequest::all());
  std::map<std::string, std::vector<int64_t>> table;
  for (const auto& row : net->geometry().sequence_table()) table[row.tensor] = row.shape;
  const auto with_batch = [&](std::vector<int64_t> s) {
    s[0] = batch;
    return s;
  };
  const auto& c = net->config();
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{batch, c.output_dim()}));
  EXPECT_EQ(out.penultimate.sizes(), with_batch(table.at("penultimate h'")));
  ASSERT_EQ(out.taps.size(), net->transformer_names().size());
  for (const auto& name : net->transformer_names()) {
    const auto& taps = out.taps.at(name);
    ASSERT_EQ(static_cast<int64_t>(taps.size()), c.layers) << name;
    for (const auto& layer : taps) {
      EXPECT_EQ(layer.logits.sizes(), with_batch(table.at(name + " logits"))) << name;
      EXPECT_EQ(layer.map.sizes(), with_batch(table.at(name + " map"))) << name;
      EXPECT_EQ(layer.post_attention.sizes(), with_batch(table.at(name + " output"))) << name;
      EXPECT_EQ(layer.output.sizes(), with_batch(table.at(name + " output"))) << name;
    }
  }
  EXPECT_FALSE(torch::any(torch::isnan(out.logits)).item<bool>());
}

TEST(Models, TeacherShapesTinyAndMosei) {
  for (auto arch : kTeachers) {
    SCOPED_TRACE(teacher_arch_name(arch));
    auto tiny = build_model(teacher_config(arch), InputShape::tiny());
    check_shapes(tiny, InputShape::tiny(), 2);
    auto mosei = build_model(teacher_config(arch, 8, 1, 2), InputShape::mosei());
    check_shapes(mosei, InputShape::mosei(), 1);
  }
}

TEST(Models, StudentShapesTinyAndMosei) {
  for (auto arch : kStudents) {
    for (auto mode : {ProxyMode::kDownsample, ProxyMode::kKeep}) {
      SCOPED_TRACE(student_arch_name(arch) + (mode == ProxyMode::kKeep ? " keep" : " downsample"));
      auto config = student_config(arch);
      config.proxy_mode = mode;
      auto tiny = build_model(config, InputShape::tiny());
      check_shapes(tiny, InputShape::tiny(), 2);
      auto mosei_config = student_config(arch, 8, 1, 2);
      mosei_config.proxy_mode = mode;
      auto mosei = build_model(mosei_config, InputShape::mosei());
      check_shapes(mosei, InputShape::mosei(), 1);
    }
  }
}

TEST(Models, TapLengthsFollowTheInputs) {
  // Teacher complete, tiny: V<-A has queries from A (16) and keys from V (16); A<-L 8x16.
  auto teacher = build_model(teacher_config(TeacherArch::kComplete), InputShape::tiny());
  const auto rows = teacher->geometry().sequence_table();
  std::map<std::string, std::vector<int64_t>> table;
  for (const auto& row : rows) table[row.tensor] = row.shape;
  EXPECT_EQ(table.at("A<-L map"), (std::vector<int64_t>{1, 8, 16}));
  EXPECT_EQ(table.at("L<-V map"), (std::vector<int64_t>{1, 16, 8}));
  EXPECT_EQ(table.at("mem:L output"), (std::vector<int64_t>{1, 8, 16}));
  // Student (5) S-down at MOSEI: V_S 500, A_S 500, L_S 50.
  auto student = build_model(student_config(StudentArch::kLanguageAudio), InputShape::mosei());
  table.clear();
  for (const auto& row : student->geometry().sequence_table()) table[row.tensor] = row.shape;
  EXPECT_EQ(table.at("V<-L map"), (std::vector<int64_t>{1, 50, 500}));
  EXPECT_EQ(table.at("V<-A map"), (std::vector<int64_t>{1, 500, 500}));
  EXPECT_EQ(table.at("V<-V map"), (std::vector<int64_t>{1, 500, 500}));
}

TEST(Models, SelectedTapsOnlyAndUnknownNamesRejected) {
  auto net = build_model(teacher_config(TeacherArch::kComplete), InputShape::tiny());
  net->eval();
  TapRequest request;
  request.what.map = true;
  request.transformers = {"V<-A", "mem:V"};
  const auto out = net->forward(random_inputs(InputShape::tiny(), 1), request);
  EXPECT_EQ(out.taps.size(), 2u);
  EXPECT_TRUE(out.taps.at("V<-A")[0].map.defined());
  EXPECT_FALSE(out.taps.at("V<-A")[0].logits.defined());
  EXPECT_TRUE(net->forward(random_inputs(InputShape::tiny(), 1)).taps.empty());
  request.transformers = {"V<-Q"};
  EXPECT_THROW(net->forward(random_inputs(InputShape::tiny(), 1), request), mmkd::Error);
}

TEST(Models, StudentIgnoresAudioAndText) {
  auto net = build_model(student_config(StudentArch::kLanguageAudio), InputShape::tiny());
  net->eval();
  ModelInputs inputs;
  inputs.features[0] = torch::randn({2, 16, 35});
  const auto out = net->forward(inputs);
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 7}));
}

TEST(Models, RegressionAndMeanReadout) {
  auto config = teacher_config(TeacherArch::kAudioBranch);
  config.output = OutputMode::kRegression;
  config.readout = Readout::kMean;
  auto net = build_model(config, InputShape::tiny());
  net->eval();
  const auto out = net->forward(random_inputs(InputShape::tiny(), 3));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(out.penultimate.sizes(), (std::vector<int64_t>{3, 16}));
}

TEST(Models, MeanReadoutSkipsPaddedSteps) {
  const auto x = torch::tensor({{{1.f}, {2.f}, {3.f}, {6.f}}});
  auto padding = torch::tensor({{true, true, false, false}});
  EXPECT_FLOAT_EQ(readout(x, Readout::kMean, padding).item<float>(), 4.5f);
  EXPECT_FLOAT_EQ(readout(x, Readout::kLast).item<float>(), 6.f);
  EXPECT_FLOAT_EQ(readout(x, Readout::kMean, torch::ones({1, 4}, torch::kBool)).item<float>(), 0.f);
}

TEST(Models, PaddedStepsGetNoAttentionAndNoNaN) {
  auto config = teacher_config(TeacherArch::kComplete);
  auto net = build_model(config, InputShape::tiny());
  net->eval();
  auto inputs = random_inputs(InputShape::tiny(), 2);
  inputs.features[1][0].slice(0, 0, 5).zero_();   // audio of sample 0: 5 padded steps
  inputs.features[0][1].slice(0, 0, 16).zero_();  // video of sample 1: all padding
  TapRequest request;
  request.what.map = true;
  const auto out = net->forward(inputs, request);
  // A<-V takes its keys from audio: the padded audio steps receive zero weight.
  // With the (causal, 16x16) future mask the first 5 video rows see only padded keys: zero rows.
  for (const auto& layer : out.taps.at("A<-V")) {
    EXPECT_TRUE(torch::all(layer.map[0].slice(1, 0, 5) == 0).item<bool>());
    EXPECT_TRUE(torch::all(layer.map[0].slice(0, 0, 5) == 0).item<bool>());
    EXPECT_TRUE(torch::allclose(layer.map[0].slice(0, 5).sum(-1), torch::ones({11}), 0, 1e-5));
  }
  // mem:A is causal self-attention over A: its first 5 rows see only padded keys -> zero rows.
  EXPECT_TRUE(torch::all(out.taps.at("mem:A")[0].map[0].slice(0, 0, 5) == 0).item<bool>());
  // Sample 1's video is all padding: V<-A (keys from V) maps are all zero, outputs finite.
  EXPECT_TRUE(torch::all(out.taps.at("V<-A")[0].map[1] == 0).item<bool>());
  EXPECT_TRUE(torch::all(torch::isfinite(out.logits)).item<bool>());
}

TEST(Models, StudentProxyPaddingFollowsTheVideo) {
  auto net = build_model(student_config(StudentArch::kLanguageAudio), InputShape::tiny());
  net->eval();
  ModelInputs inputs;
  inputs.features[0] = torch::randn({1, 16, 35});
  inputs.features[0][0].slice(0, 0, 4).zero_();  // 4 padded video steps
  TapRequest request;
  request.what.map = true;
  const auto out = net->forward(inputs, request);
  // V<-L: keys from V_S (16 steps, first 4 padded); L_S has 8 steps of kernel 2 stride 2.
  for (const auto& layer : out.taps.at("V<-L")) {
    EXPECT_EQ(layer.map.sizes(), (std::vector<int64_t>{1, 8, 16}));
    EXPECT_TRUE(torch::all(layer.map[0].slice(1, 0, 4) == 0).item<bool>());
  }
  // Student (2): L<-V takes keys from L_S (16 -> 8, kernel 2 stride 2): windows {0,1} and {2,3}
  // hold only padding, so L_S steps 0 and 1 are padded keys.
  auto video = build_model(student_config(StudentArch::kVideo), InputShape::tiny());
  video->eval();
  const auto out2 = video->forward(inputs, request);
  for (const auto& layer : out2.taps.at("L<-V")) {
    EXPECT_EQ(layer.map.sizes(), (std::vector<int64_t>{1, 16, 8}));
    EXPECT_TRUE(torch::all(layer.map[0].slice(1, 0, 2) == 0).item<bool>());
    EXPECT_TRUE(torch::all(layer.map[0].slice(1, 2) > 0).item<bool>());
  }
}

TEST(Models, EvalDeterministicAndGradientsReachEveryParameter) {
  std::vector<ModelConfig> configs;
  for (auto arch : kTeachers) configs.push_back(teacher_config(arch));
  for (auto arch : kStudents) configs.push_back(student_config(arch));
  for (const auto& config : configs) {
    SCOPED_TRACE(config.describe());
    torch::manual_seed(7);
    auto net = build_model(config, InputShape::tiny());
    const auto inputs = random_inputs(InputShape::tiny(), 2);
    net->eval();
    {
      torch::NoGradGuard no_grad;
      EXPECT_TRUE(torch::equal(net->forward(inputs).logits, net->forward(inputs).logits));
    }
    net->train();
    const auto out = net->forward(inputs);
    torch::nn::functional::cross_entropy(out.logits, torch::tensor({1, 5})).backward();
    for (const auto& p : net->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
    }
  }
}

// Inference mode computes only the read-out row of each read-out transformer's last layer; the
// logits must not change, and the mean readout (which needs every row) must be left alone.
TEST(Models, InferenceModeLastRowLogitsEqualEvaluation) {
  std::vector<ModelConfig> configs;
  for (auto arch : kTeachers) configs.push_back(teacher_config(arch));
  for (auto arch : kStudents) configs.push_back(student_config(arch));
  configs.push_back(student_config(StudentArch::kLanguageAudio));
  configs.back().readout = Readout::kMean;
  for (const auto& config : configs) {
    SCOPED_TRACE(config.describe());
    torch::manual_seed(3);
    auto net = build_model(config, InputShape::tiny());
    net->eval();
    auto inputs = random_inputs(InputShape::tiny(), 3);
    inputs.features[0][1].slice(0, 0, 4).zero_();  // front padding
    torch::Tensor evaluated, inferred;
    {
      torch::NoGradGuard no_grad;
      evaluated = net->forward(inputs).logits;
    }
    {
      c10::InferenceMode inference;
      inferred = net->forward(inputs).logits;
    }
    EXPECT_TRUE(torch::allclose(inferred, evaluated, 1e-5, 1e-5))
        << (inferred - evaluated).abs().max().item<double>();
  }
}

TEST(Models, TeacherParameterCountsMatchMulT) {
  auto config = teacher_config(TeacherArch::kComplete, 40, 4, 8);
  config.conv_kernel = 1;
  const auto shape = InputShape::mosei();
  auto k1 = build_model(config, shape);
  EXPECT_EQ(k1->parameter_count(), 1542047);
  const int64_t d = 40;
  EXPECT_EQ(k1->parameter_count(), 936 * d * d + 1111 * d + 7);
  EXPECT_EQ(k1->projection_parameter_count(), 409 * d);
  EXPECT_EQ(teacher_parameter_count(config, shape), 1542047);
  config.conv_kernel = 3;
  auto k3 = build_model(config, shape);
  EXPECT_EQ(k3->parameter_count(), 936 * d * d + 1929 * d + 7);
  EXPECT_EQ(k3->parameter_count(), 1574767);
  EXPECT_EQ(teacher_parameter_count(config, shape), 1574767);
  // Every configuration agrees with the closed form.
  for (auto arch : kTeachers) {
    auto c = teacher_config(arch, 16, 2, 4);
    EXPECT_EQ(build_model(c, shape)->parameter_count(), teacher_parameter_count(c, shape))
        << teacher_arch_name(arch);
  }
  // Branch teachers, 4 layers: 296d^2 + 234d + 7 + projections.
  auto branch = teacher_config(TeacherArch::kVideoBranch, 40, 4, 8);
  EXPECT_EQ(build_model(branch, shape)->parameter_count(), 296 * d * d + 234 * d + 7 + 409 * 3 * d);
}

TEST(Models, StudentParameterCounts) {
  const auto shape = InputShape::mosei();
  auto config = student_config(StudentArch::kLanguageAudio, 64, 4, 8);
  auto net = build_model(config, shape);
  const int64_t proxies = net->projection_parameter_count();
  EXPECT_EQ(net->parameter_count() - proxies, 675655);
  const int64_t d = 64;
  EXPECT_EQ(net->parameter_count() - proxies, 162 * d * d + 189 * d + 7);
  // Proxies at MOSEI lengths: V_S kernel 3, A_S kernel 3 (500 -> 500), L_S kernel 10 stride 10.
  EXPECT_EQ(proxies, 35 * d * (3 + 3 + 10));
  for (auto arch : kStudents) {
    auto c = student_config(arch, 16, 2, 4);
    auto s = build_model(c, shape);
    EXPECT_EQ(s->parameter_count() - s->projection_parameter_count(),
              transformer_and_head_parameter_count(c))
        << student_arch_name(arch);
  }
  // The complete student mirrors the teacher: 936d^2 + 702d + 7 without proxies.
  auto complete = build_model(student_config(StudentArch::kComplete, 64, 4, 8), shape);
  EXPECT_EQ(complete->parameter_count() - complete->projection_parameter_count(),
            936 * d * d + 702 * d + 7);
}

TEST(Models, ProxyGeometryIsComputedFromLengths) {
  EXPECT_EQ(conv1d_output_length(500, {10, 10, 0}), 50);
  EXPECT_EQ(conv1d_output_length(16, {3, 1, 1}), 16);
  const auto g = downsample_geometry(500, 50, 3);
  EXPECT_EQ(g.stride, 10);
  EXPECT_EQ(g.kernel, 10);
  for (int64_t in : {1, 7, 16, 50, 500, 999}) {
    for (int64_t out = 1; out <= in; out += std::max<int64_t>(1, in / 7)) {
      const auto geometry = downsample_geometry(in, out, 3);
      EXPECT_EQ(conv1d_output_length(in, geometry), out) << in << "->" << out;
      EXPECT_GE(geometry.kernel, geometry.stride);  // every step is seen
      const auto y = torch::conv1d(torch::zeros({1, 1, in}), torch::zeros({1, 1, geometry.kernel}),
                                   {}, geometry.stride, geometry.padding);
      EXPECT_EQ(y.size(2), out);
    }
  }
  EXPECT_THROW(downsample_geometry(50, 500, 3), mmkd::Error);
  // Downsample mode uses the data's lengths unless the config names targets; keep mode keeps Tv.
  auto config = student_config(StudentArch::kLanguageAudio);
  EXPECT_EQ(proxy_geometries(config, InputShape::tiny())[2].stride, 2);
  config.target_lengths = {4, 2};
  auto student = build_model(config, InputShape::tiny());
  EXPECT_EQ(student->geometry().lengths(), (std::array<int64_t, 3>{16, 4, 2}));
  config.target_lengths.clear();
  config.proxy_mode = ProxyMode::kKeep;
  config.proxy_kernels = {1, 3, 5};
  auto keep = build_model(config, InputShape::mosei());
  EXPECT_EQ(keep->geometry().lengths(), (std::array<int64_t, 3>{500, 500, 500}));
}

TEST(Pairing, TableFollowsThePaper) {
  const auto& table = pairing_table();
  ASSERT_EQ(table.size(), 5u);
  EXPECT_EQ(pairing(1).pairs.size(), 9u);
  EXPECT_EQ(pairing(2).teacher, TeacherArch::kVideoBranch);
  EXPECT_EQ(pairing(5).teacher, TeacherArch::kComplete);
  EXPECT_EQ(pairing(5).student, StudentArch::kLanguageAudio);
  EXPECT_EQ(pairing(5).pairs[0].teacher, "V<-A");
  EXPECT_EQ(pairing(5).pairs[1].teacher, "V<-L");
  EXPECT_EQ(pairing(4).pairs[1].student, "L<-A");
  EXPECT_THROW(pairing(6), mmkd::Error);
  EXPECT_EQ(pairing_for_student(StudentArch::kAudio).id, 4);
}

TEST(Pairing, EveryNameExistsInItsNetwork) {
  for (const auto& entry : pairing_table()) {
    SCOPED_TRACE(entry.title);
    auto teacher = build_model(teacher_config(entry.teacher), InputShape::tiny());
    auto student = build_model(student_config(entry.student), InputShape::tiny());
    for (const auto& pair : entry.pairs) {
      EXPECT_TRUE(teacher->has_transformer(pair.teacher)) << pair.teacher;
      EXPECT_TRUE(student->has_transformer(pair.student)) << pair.student;
      // Distilled maps have the same shape when the student downsamples to the teacher's lengths.
      const auto t = teacher->geometry().sequence_table();
      const auto s = student->geometry().sequence_table();
      const auto find = [](const std::vector<SequenceRow>& rows, const std::string& name) {
        for (const auto& r : rows)
          if (r.tensor == name) return r.shape;
        return std::vector<int64_t>{};
      };
      EXPECT_EQ(find(t, pair.teacher + " map"), find(s, pair.student + " map"));
    }
  }
}

TEST(Names, PaperNamesAndModuleNames) {
  using mmkd::data::Modality;
  EXPECT_EQ(transformer_name(Modality::kAudio, Modality::kVideo), "A<-V");
  EXPECT_EQ(module_name(Modality::kAudio, Modality::kVideo), "trans_v_with_a");  // MulT order
  EXPECT_EQ(memory_module_name(Modality::kText), "trans_l_mem");
  EXPECT_EQ(transformer_names(student_stages(StudentArch::kLanguageAudio)),
            (std::vector<std::string>{"V<-V", "V<-L", "V<-A"}));
  EXPECT_EQ(transformer_names(teacher_stages(TeacherArch::kVideoBranch)),
            (std::vector<std::string>{"A<-V", "L<-V", "mem:V"}));
  auto net = build_model(teacher_config(TeacherArch::kComplete), InputShape::tiny());
  EXPECT_EQ(net->transformer_names().size(), 9u);
  EXPECT_NO_THROW(net->transformer("mem:A"));
  EXPECT_THROW(net->transformer("mem:X"), mmkd::Error);
  EXPECT_TRUE(net->named_modules().contains("trans_a_with_l"));
}

}  // namespace
}  // namespace mmkd::models
