// Exported ONNX models must pass onnx.checker and compute mmkd's logits in ONNX Runtime (run by
// tests/onnx/check_onnx.py with the pip stack's Python) for every teacher and student, at the
// trained and other lengths, with and without front padding, batch 1 and 7; exports that cannot
// be faithful are refused by name and leave no file.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "../support/cli.h"
#include "mmkd/core/error.h"
#include "mmkd/data/mosei_io.h"
#include "mmkd/onnx/model_export.h"
#include "mmkd/train/checkpoint.h"

namespace mmkd::onnx {
namespace {

using mmkd::testing::repo_path;
using mmkd::testing::run_cli;
using mmkd::testing::run_command;
using mmkd::testing::TempDir;
using models::InputShape;
using models::ModelConfig;

/// A Python with onnx and onnxruntime: $MMKD_ONNX_PYTHON or the pip stack's .venv; "" if none.
std::string onnx_python() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("MMKD_ONNX_PYTHON")) candidates.push_back(env);
  candidates.push_back(repo_path(".venv/bin/python"));
  for (const auto& python : candidates) {
    if (run_command(python + " -c 'import onnx, onnxruntime, numpy'").status == 0) return python;
  }
  return "";
}

#define REQUIRE_ONNX_PYTHON(python)                                                          \
  const std::string python = onnx_python();                                                  \
  if (python.empty()) {                                                                      \
    GTEST_SKIP() << "needs a Python with onnx and onnxruntime: bash scripts/setup installs " \
                    "them into .venv (or set MMKD_ONNX_PYTHON)";                             \
  }

/// Writes the models and cases check_onnx.py reads, and runs it.
class Manifest {
 public:
  explicit Manifest(const TempDir& dir) : dir_(dir) {}

  /// Exports `net` and adds it; returns its entry, to which cases are added.
  nlohmann::json& add_model(const std::string& name, models::MultimodalNet& net,
                            const ExportOptions& options = {}) {
    const std::string config_text = "model: " + net->config().describe() + "\n";
    write_onnx(dir_ / (name + ".onnx"), *net, options, config_text, name);
    std::ofstream(dir_ / (name + ".yaml"), std::ios::binary) << config_text;
    nlohmann::json spec = {
        {"name", name},
        {"file", name + ".onnx"},
        {"config_file", name + ".yaml"},
        {"inputs", onnx_input_names(net->config())},
        {"classification", net->config().output == models::OutputMode::kClassification},
        {"metadata",
         {{"mmkd.role", net->config().role == models::Role::kTeacher ? "teacher" : "student"},
          {"mmkd.model", net->config().describe()},
          {"mmkd.version", "0.1.0"}}},
        {"cases", nlohmann::json::array()}};
    models_.push_back(spec);
    return models_.back();
  }

  /// Adds a case: `features` (V, A, L; a student reads only V) and mmkd's logits for them, in
  /// inference mode as `mmkd predict` computes them.
  void add_case(nlohmann::json& spec, models::MultimodalNet& net, const std::string& label,
                const std::array<torch::Tensor, 3>& features, bool expect_error = false) {
    nlohmann::json c = {{"label", label}, {"inputs", nlohmann::json::object()}};
    const auto names = onnx_input_names(net->config());
    models::ModelInputs inputs;
    for (size_t m = 0; m < names.size(); ++m) {
      inputs.features[m] = features[m];
      c["inputs"][names[m]] = tensor(features[m]);
    }
    if (expect_error) {
      c["expect_error"] = true;
    } else {
      c10::InferenceMode inference;
      c["logits"] = tensor(net->forward(inputs).logits);
    }
    spec["cases"].push_back(c);
    ++cases_;
  }

  /// Runs check_onnx.py; EXPECTs that it passed and checked every case.
  void check(const std::string& python) {
    std::ofstream(dir_ / "manifest.json") << nlohmann::json{{"models", models_}}.dump(1);
    const auto result =
        run_command(python + " " + repo_path("tests/onnx/check_onnx.py") + " " + dir_.str());
    EXPECT_EQ(result.status, 0) << result.output;
    EXPECT_NE(result.output.find("\n0 failed"), std::string::npos) << result.output;
    EXPECT_GE(std::count(result.output.begin(), result.output.end(), '\n'), cases_)
        << result.output;
    const auto largest = result.output.find("largest");
    if (largest != std::string::npos) std::cout << result.output.substr(largest);
  }

 private:
  nlohmann::json tensor(const torch::Tensor& t) {
    const auto file = "t" + std::to_string(files_++) + ".f32";
    const auto data = t.to(torch::kFloat32).contiguous();
    std::ofstream(dir_ / file, std::ios::binary)
        .write(static_cast<const char*>(data.data_ptr()), data.nbytes());
    return {{"file", file}, {"shape", data.sizes().vec()}};
  }

  const TempDir& dir_;
  std::vector<nlohmann::json> models_;
  int files_ = 0;
  int64_t cases_ = 0;
};

/// Random features [batch, len, dim] per modality; with `front_padding`, sample b starts with
/// some all-zero steps (sample 3 is padding throughout).
std::array<torch::Tensor, 3> random_features(const InputShape& shape, int64_t batch,
                                             const std::array<int64_t, 3>& len,
                                             bool front_padding) {
  std::array<torch::Tensor, 3> x;
  for (size_t m = 0; m < 3; ++m) {
    x[m] = torch::randn({batch, len[m], shape.dim[m]});
    if (!front_padding) continue;
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t pad = b <= 3 ? b * len[m] / 3 : (b - 4) * len[m] / 5;
      x[m][b].narrow(0, 0, pad).zero_();
    }
  }
  return x;
}

ModelConfig tiny_model_config(models::Role role) {
  ModelConfig c;
  c.role = role;
  c.d_model = 8;
  c.heads = 2;
  c.layers = 2;
  return c;
}

/// The four checks every architecture gets: trained lengths and others, padded and not, batch
/// 7 and 1.
void add_standard_cases(Manifest& manifest, nlohmann::json& spec, models::MultimodalNet& net) {
  const auto& shape = net->input_shape();
  const auto other = std::array<int64_t, 3>{shape.len[0] + 5, shape.len[1] - 3, shape.len[2] + 2};
  manifest.add_case(spec, net, "batch 7, trained lengths, front padding",
                    random_features(shape, 7, shape.len, true));
  manifest.add_case(spec, net, "batch 1, trained lengths",
                    random_features(shape, 1, shape.len, false));
  manifest.add_case(spec, net, "batch 7, other lengths, front padding",
                    random_features(shape, 7, other, true));
  manifest.add_case(spec, net, "batch 1, other lengths", random_features(shape, 1, other, false));
}

models::MultimodalNet eval_model(const ModelConfig& config, const InputShape& shape) {
  auto net = models::build_model(config, shape);
  net->eval();
  return net;
}

TEST(OnnxExport, EveryTeacherAndStudentMatchesOnnxRuntime) {
  REQUIRE_ONNX_PYTHON(python);
  torch::manual_seed(0);
  TempDir dir("onnx_architectures");
  Manifest manifest(dir);
  const auto shape = InputShape::tiny();
  using models::TeacherArch;
  for (const auto& [name, arch] : std::vector<std::pair<std::string, TeacherArch>>{
           {"teacher_complete", TeacherArch::kComplete},
           {"teacher_video", TeacherArch::kVideoBranch},
           {"teacher_audio", TeacherArch::kAudioBranch},
           {"teacher_language", TeacherArch::kLanguageBranch}}) {
    auto config = tiny_model_config(models::Role::kTeacher);
    config.teacher_arch = arch;
    auto net = eval_model(config, shape);
    add_standard_cases(manifest, manifest.add_model(name, net), net);
  }
  for (const auto mode : {models::ProxyMode::kDownsample, models::ProxyMode::kKeep}) {
    for (int arch = 1; arch <= 5; ++arch) {
      auto config = tiny_model_config(models::Role::kStudent);
      config.student_arch = static_cast<models::StudentArch>(arch);
      config.proxy_mode = mode;
      if (mode == models::ProxyMode::kKeep) config.proxy_kernels = {3, 5, 1};
      auto net = eval_model(config, shape);
      const auto name = "student_" + std::to_string(arch) +
                        (mode == models::ProxyMode::kKeep ? "_keep" : "_downsample");
      add_standard_cases(manifest, manifest.add_model(name, net), net);
    }
  }
  // The configured sizes (teacher d=40, student d=64, 4 layers, 8 heads): more rounding to agree.
  for (const auto role : {models::Role::kTeacher, models::Role::kStudent}) {
    ModelConfig config;
    config.role = role;
    config.d_model = role == models::Role::kTeacher ? 40 : 64;
    auto net = eval_model(config, shape);
    add_standard_cases(
        manifest,
        manifest.add_model(
            role == models::Role::kTeacher ? "teacher_complete_d40" : "student_5_d64", net),
        net);
  }
  manifest.check(python);
}

TEST(OnnxExport, ReadoutsMasksModesAndOpsetsMatchOnnxRuntime) {
  REQUIRE_ONNX_PYTHON(python);
  torch::manual_seed(1);
  TempDir dir("onnx_variants");
  Manifest manifest(dir);
  const auto shape = InputShape::tiny();
  {
    auto config = tiny_model_config(models::Role::kTeacher);
    config.readout = models::Readout::kMean;
    auto net = eval_model(config, shape);
    add_standard_cases(manifest, manifest.add_model("teacher_mean_readout", net), net);
  }
  {
    auto config = tiny_model_config(models::Role::kStudent);
    config.readout = models::Readout::kMean;
    config.output = models::OutputMode::kRegression;
    config.target_lengths = {5, 3};
    auto net = eval_model(config, shape);
    add_standard_cases(manifest, manifest.add_model("student_5_mean_regression", net), net);
  }
  {
    auto config = tiny_model_config(models::Role::kTeacher);
    config.future_mask = false;
    config.mask_padding = false;
    config.layers = 3;
    config.heads = 4;
    auto net = eval_model(config, shape);
    add_standard_cases(manifest, manifest.add_model("teacher_no_masks", net), net);
  }
  {
    // The MulT mode: identity projections (kernel 1, features of width d), zero positions for
    // padded steps, no key padding mask, memories of 3 layers.
    auto config = tiny_model_config(models::Role::kTeacher);
    config.compat = models::Compat::kMult;
    config.mask_padding = false;
    config.conv_kernel = 1;
    config.layers = 1;
    InputShape mult_shape = shape;
    mult_shape.dim = {8, 74, 8};
    auto net = eval_model(config, mult_shape);
    add_standard_cases(manifest, manifest.add_model("teacher_mult_mode", net), net);
  }
  {
    auto net = eval_model(tiny_model_config(models::Role::kStudent), shape);
    ExportOptions fixed;
    fixed.dynamic_batch = fixed.dynamic_time = false;
    fixed.batch = 7;
    fixed.opset = 21;
    auto& spec = manifest.add_model("student_5_fixed_opset21", net, fixed);
    manifest.add_case(spec, net, "batch 7, trained lengths, front padding",
                      random_features(shape, 7, shape.len, true));
    manifest.add_case(spec, net, "batch 1 refused by the fixed batch",
                      random_features(shape, 1, shape.len, false), /*expect_error=*/true);
    manifest.add_case(spec, net, "other length refused by the fixed time axis",
                      random_features(shape, 7, {20, 16, 8}, false), /*expect_error=*/true);
  }
  manifest.check(python);
}

TEST(OnnxExport, ModelsExportedFromTinyRunsMatchOnnxRuntimeOnTheSyntheticTestSplit) {
  REQUIRE_ONNX_PYTHON(python);
  TempDir dir("onnx_tiny_runs");
  const std::string small_model =
      "--set data.preset=tiny --set train.epochs=1 --set model.d_model=8 --set model.layers=1 "
      "--set model.heads=2 --set train.progress=false --threads 1";
  ASSERT_EQ(run_cli("data synth --preset tiny --out " + (dir / "tiny.pkl")).status, 0);
  const auto test_split = data::load_mosei(dir / "tiny.pkl").split("test");
  Manifest manifest(dir);
  for (const auto& [name, config] : std::vector<std::pair<std::string, std::string>>{
           {"student", "configs/student_5.yaml"}, {"teacher", "configs/teacher_complete.yaml"}}) {
    const auto run = dir / name;
    const auto trained =
        run_cli("train --config " + repo_path(config) + " --run " + run + " " + small_model);
    ASSERT_EQ(trained.status, 0) << trained.output;
    const auto exported = run_cli("export --checkpoint " + run + " --out " + run + ".onnx");
    ASSERT_EQ(exported.status, 0) << exported.output;
    EXPECT_NE(exported.output.find("wrote " + run + ".onnx"), std::string::npos) << exported.output;
    // The CLI's file is the one checked: the manifest's model entry points at it.
    auto net = train::load_model(run + "/best.pt", torch::kCPU);
    net->eval();
    auto& spec = manifest.add_model(name + "_written_by_test", net);
    spec["file"] = name + ".onnx";
    std::ofstream(dir / (name + "_written_by_test.yaml"), std::ios::binary)
        << std::ifstream(run + "/config.yaml", std::ios::binary).rdbuf();
    manifest.add_case(spec, net, "synthetic tiny test split", test_split.features);
  }
  manifest.check(python);
}

TEST(OnnxExport, RefusesOptionsItCannotHonourAndLeavesNoFile) {
  TempDir dir("onnx_refusals");
  auto net = eval_model(tiny_model_config(models::Role::kStudent), InputShape::tiny());
  const auto out = dir / "student.onnx";
  ExportOptions old_opset;
  old_opset.opset = 16;
  try {
    write_onnx(out, *net, old_opset, "", "student.pt");
    FAIL() << "opset 16 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("opset 16"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("LayerNormalization"), std::string::npos) << e.what();
  }
  ExportOptions axes;
  try {
    parse_dynamic_axes("batch,lenght", axes);
    FAIL() << "unknown axis accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown axis 'lenght'"), std::string::npos) << e.what();
  }
  parse_dynamic_axes("time", axes);
  EXPECT_TRUE(axes.dynamic_time && !axes.dynamic_batch);
  parse_dynamic_axes("none", axes);
  EXPECT_TRUE(!axes.dynamic_time && !axes.dynamic_batch);

  // A module the exporter does not know: its parameter would be dropped from the graph.
  net->register_parameter("calibration", torch::ones({3}));
  try {
    write_onnx(out, *net, {}, "", "student.pt");
    FAIL() << "an unmapped parameter was exported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("student.pt: parameter 'calibration' has no ONNX mapping"),
              std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.str())) << "a refused export left a file";

  const auto cli = run_cli("export --checkpoint " + (dir / "missing") + " --out " + out);
  EXPECT_NE(cli.status, 0);
  EXPECT_NE(cli.output.find("no such run directory or checkpoint file"), std::string::npos)
      << cli.output;
}

}  // namespace
}  // namespace mmkd::onnx
