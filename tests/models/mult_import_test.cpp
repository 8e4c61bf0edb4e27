// MulT state dicts written by tests/fixtures/make_mult_state_dict.py (a MulT-architecture network
// in PyTorch, random weights) imported in the MulT mode must compute the Python forward's outputs;
// state dicts that do not fit, whole pickled models and hostile archives are refused by name.
#include <gtest/gtest.h>

#include <caffe2/serialize/inline_container.h>

#include <unistd.h>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "../support/cli.h"
#include "mmkd/core/error.h"
#include "mmkd/data/npy.h"
#include "mmkd/data/torch_state_dict.h"
#include "mmkd/models/mult_import.h"
#include "mmkd/models/parameter_count.h"

namespace mmkd::models {
namespace {

using mmkd::testing::repo_path;
using mmkd::testing::run_command;
using mmkd::testing::TempDir;

/// Pythons that may write the fixtures: $MMKD_TORCH_PYTHON, the pip stack's .venv, Debian's
/// python3 (with python3-torch).
std::vector<std::string> python_candidates() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("MMKD_TORCH_PYTHON")) candidates.push_back(env);
  candidates.push_back(repo_path(".venv/bin/python"));
  candidates.push_back("/usr/bin/python3");
  return candidates;
}

bool has_torch(const std::string& python) {
  return run_command(python + " -c 'import torch, numpy'").status == 0;
}

struct Fixture {
  std::string dir;
  nlohmann::json meta;
};

std::string file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// The fixtures, generated once per generator script, cases and Python: CTest runs every test in
/// its own process, and each Python run pays for importing torch. A directory is written under a
/// temporary name and renamed into place, so tests running side by side never see half of one.
const std::map<std::string, std::string> kCases = {
    {"w30_c7", "--width 30 --layers 2 --heads 5 --output-dim 7 --whole-model"},
    {"w40_reg", "--width 40 --layers 2 --heads 8 --output-dim 1"},
    {"w30_video_branch", "--width 30 --layers 1 --heads 5 --output-dim 7 --branches v"},
    {"w40_language_branch", "--width 40 --layers 4 --heads 4 --output-dim 1 --branches l"},
};

/// Where the fixtures of this generator script, its cases and `python` are kept.
std::filesystem::path fixture_cache_path(const std::string& python) {
  std::string key = file_text(repo_path("tests/fixtures/make_mult_state_dict.py")) + python;
  for (const auto& [name, flags] : kCases) key += name + flags;
  return std::filesystem::temp_directory_path() /
         ("mmkd_mult_fixtures_" + std::to_string(std::hash<std::string>{}(key)));
}

/// Generates the fixtures with `python` unless a complete copy exists; returns its directory.
std::string fixture_cache(const std::string& python) {
  const std::string script = repo_path("tests/fixtures/make_mult_state_dict.py");
  const std::filesystem::path cache = fixture_cache_path(python);
  if (std::filesystem::exists(cache / "complete")) return cache.string();
  const std::filesystem::path work = cache.string() + ".tmp-" + std::to_string(::getpid());
  std::filesystem::remove_all(work);
  for (const auto& [name, flags] : kCases) {
    const auto made =
        run_command(python + " " + script + " --out " + (work / name).string() + " " + flags);
    if (made.status != 0) throw std::runtime_error("fixture " + name + ": " + made.output);
  }
  std::ofstream(work / "complete") << "ok\n";
  std::error_code taken;  // another test process may have finished first: keep its copy
  std::filesystem::rename(work, cache, taken);
  if (taken) std::filesystem::remove_all(work);
  return cache.string();
}

/// The fixtures' directory, empty when no Python with torch can write them. A complete copy
/// from an earlier test process is used without starting Python.
std::string find_or_make_fixtures() {
  for (const auto& python : python_candidates())
    if (std::filesystem::exists(fixture_cache_path(python) / "complete"))
      return fixture_cache_path(python).string();
  for (const auto& python : python_candidates())
    if (has_torch(python)) return fixture_cache(python);
  return {};
}

/// MulT fixtures shared by the suite (see kCases).
class MultImportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string dir = find_or_make_fixtures();
    available_ = !dir.empty();
    if (!available_) return;
    for (const auto& [name, flags] : kCases) {
      std::ifstream meta(dir + "/" + name + "/meta.json");
      fixtures_[name] = {dir + "/" + name, nlohmann::json::parse(meta)};
    }
  }

  void SetUp() override {
    if (!available_) GTEST_SKIP() << "no Python with torch to write MulT fixtures";
  }

  static const Fixture& fixture(const std::string& name) { return fixtures_.at(name); }

  static MultImportOptions options_for(const Fixture& f) {
    MultImportOptions options;
    options.heads = f.meta["heads"].get<int64_t>();
    for (size_t m = 0; m < 3; ++m) options.shape.len[m] = f.meta["lengths"][m].get<int64_t>();
    return options;
  }

  static torch::Tensor logits_of(MultimodalNet& model, const Fixture& f) {
    ModelInputs inputs;
    inputs.features = {data::read_npy(f.dir + "/vision.npy"), data::read_npy(f.dir + "/audio.npy"),
                       data::read_npy(f.dir + "/text.npy")};
    torch::NoGradGuard no_grad;
    return model->forward(inputs).logits;
  }

  static inline bool available_ = false;
  static inline std::map<std::string, Fixture> fixtures_;
};

class MultImportCase : public MultImportTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(MultImportCase, OutputsEqualThePythonForwardWithFrontPadding) {
  const Fixture& f = fixture(GetParam());
  const auto state_dict = data::read_torch_state_dict(f.dir + "/state_dict.pt");
  const MultImport imported = import_mult(state_dict, options_for(f), "fixture");
  ASSERT_TRUE(imported.config.mult_compat());
  EXPECT_EQ(imported.config.d_model, f.meta["width"].get<int64_t>());
  EXPECT_EQ(imported.config.layers, f.meta["layers"].get<int64_t>());
  EXPECT_EQ(imported.config.output_dim(), f.meta["output_dim"].get<int64_t>());
  MultimodalNet model = imported.model;
  const torch::Tensor expected = data::read_npy(f.dir + "/logits.npy");
  const torch::Tensor got = logits_of(model, f);
  ASSERT_EQ(got.sizes(), expected.sizes());
  EXPECT_LT((got - expected).abs().max().item<double>(), 1e-5) << got << expected;
  // The deployment path (inference mode computes only the read-out row) agrees too.
  {
    c10::InferenceMode inference;
    const torch::Tensor fast = logits_of(model, f);
    EXPECT_LT((fast - expected).abs().max().item<double>(), 1e-5);
  }
  // Every tensor MulT's network uses was loaded: the counts agree with the file's.
  int64_t used = 0;
  for (const auto& [key, tensor] : state_dict) {
    if (std::find(imported.ignored.begin(), imported.ignored.end(), key) == imported.ignored.end())
      used += tensor.numel();
  }
  EXPECT_EQ(model->parameter_count(), used);
  EXPECT_EQ(model->parameter_count(),
            teacher_parameter_count(imported.config, imported.model->input_shape()));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, MultImportCase,
                         ::testing::Values("w30_c7", "w40_reg", "w30_video_branch",
                                           "w40_language_branch"));

TEST_F(MultImportTest, WithoutTheMultModeTheOutputsDiffer) {
  // The conventions matter: the same weights in mmkd's own mode compute something else.
  const Fixture& f = fixture("w30_c7");
  const auto state_dict = data::read_torch_state_dict(f.dir + "/state_dict.pt");
  const MultImport imported = import_mult(state_dict, options_for(f), "fixture");
  ModelConfig own = imported.config;
  own.compat = Compat::kMmkd;
  MultimodalNet model = build_model(own, imported.model->input_shape());
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters())
    item.value().copy_(imported.model->named_parameters()[item.key()]);
  model->eval();
  const torch::Tensor expected = data::read_npy(f.dir + "/logits.npy");
  EXPECT_GT((logits_of(model, f) - expected).abs().max().item<double>(), 1e-3);
}

TEST_F(MultImportTest, IgnoresOnlyWhatMultRegistersButDoesNotUse) {
  const Fixture& f = fixture("w30_video_branch");
  const auto imported =
      import_mult(data::read_torch_state_dict(f.dir + "/state_dict.pt"), options_for(f), "fixture");
  EXPECT_EQ(imported.config.teacher_arch, TeacherArch::kVideoBranch);
  for (const auto& key : imported.ignored) {
    const bool version = key.find(".version") != std::string::npos;
    const bool positions = key.find(".embed_positions._float_tensor") != std::string::npos;
    const bool unused_memory =
        key.rfind("trans_l_mem.", 0) == 0 || key.rfind("trans_a_mem.", 0) == 0;
    EXPECT_TRUE(version || positions || unused_memory) << key;
  }
}

TEST_F(MultImportTest, MissingExtraAndMisshapenKeysAreNamed) {
  const Fixture& f = fixture("w30_c7");
  const auto original = data::read_torch_state_dict(f.dir + "/state_dict.pt");
  const auto refusal = [&](const data::StateDict& sd) {
    try {
      import_mult(sd, options_for(f), "bad.pt");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  const auto edited = [&](const std::string& key,
                          const std::function<void(data::StateDict&, size_t)>& edit) {
    auto sd = original;
    const auto it =
        std::find_if(sd.begin(), sd.end(), [&](const auto& e) { return e.first == key; });
    EXPECT_NE(it, sd.end()) << key;
    edit(sd, static_cast<size_t>(it - sd.begin()));
    return sd;
  };
  const std::string missing =
      refusal(edited("trans_a_with_v.layers.1.fc2.bias",
                     [](data::StateDict& sd, size_t i) { sd.erase(sd.begin() + i); }));
  EXPECT_NE(missing.find("bad.pt: "), std::string::npos) << missing;
  EXPECT_NE(missing.find("missing keys: trans_a_with_v.layers.1.fc2.bias"), std::string::npos)
      << missing;
  const std::string extra = refusal(edited("proj1.bias", [](data::StateDict& sd, size_t) {
    sd.emplace_back("proj3.weight", torch::zeros({2, 2}));
  }));
  EXPECT_NE(extra.find("unexpected keys: proj3.weight"), std::string::npos) << extra;
  const std::string shape =
      refusal(edited("trans_v_with_l.layers.0.fc1.bias",
                     [](data::StateDict& sd, size_t i) { sd[i].second = torch::zeros({119}); }));
  EXPECT_NE(shape.find("wrong shapes: trans_v_with_l.layers.0.fc1.bias [119] (expected [120])"),
            std::string::npos)
      << shape;
  const std::string nan = refusal(edited("proj2.weight", [](data::StateDict& sd, size_t i) {
    sd[i].second = sd[i].second.clone();
    sd[i].second[0][0] = std::numeric_limits<float>::quiet_NaN();
  }));
  EXPECT_NE(nan.find("'proj2.weight' holds non-finite values"), std::string::npos) << nan;
  const std::string memory =
      refusal(edited("trans_l_mem.layers.2.fc1.weight", [](data::StateDict& sd, size_t) {
        data::StateDict kept;
        for (auto& e : sd)
          if (e.first.rfind("trans_l_mem.layers.2.", 0) != 0) kept.push_back(e);
        sd = kept;
      }));
  EXPECT_NE(memory.find("trans_l_mem has 2 layers; MulT's code gives a memory max(layers, 3) = 3"),
            std::string::npos)
      << memory;
  auto options = options_for(f);
  options.heads = 7;
  try {
    import_mult(original, options, "bad.pt");
    ADD_FAILURE() << "7 heads accepted for width 30";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("width 30 (from trans_l_with_a) is not divisible by the "
                                         "given number of heads, 7"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(MultImportTest, AWholePickledModelIsRefusedNamingItsClass) {
  const std::string path = fixture("w30_c7").dir + "/whole_model.pt";
  try {
    data::read_torch_state_dict(path);
    ADD_FAILURE() << "a pickled module was loaded";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path + ": "), std::string::npos) << message;
    EXPECT_NE(message.find("refers to global '__main__."), std::string::npos) << message;
    EXPECT_NE(message.find("save model.state_dict() instead"), std::string::npos) << message;
  }
}

TEST_F(MultImportTest, TheCliImportsARunThatEvaluatesAndTeachesAStudent) {
  const Fixture& f = fixture("w30_c7");
  TempDir dir("mult_import_cli");
  const std::string tiny =
      " --set data.preset=tiny --set train.epochs=1 --set train.progress=false --set "
      "train.threads=1";
  const auto imported = mmkd::testing::run_cli(
      "import mult --state-dict " + f.dir + "/state_dict.pt --heads 5 --config " +
      repo_path("configs/teacher_mult.yaml") + tiny + " --out " + (dir / "teacher"));
  ASSERT_EQ(imported.status, 0) << imported.output;
  EXPECT_NE(imported.output.find("imported teacher complete d=30 layers=2 heads=5"),
            std::string::npos)
      << imported.output;
  const auto eval = mmkd::testing::run_cli("eval --run " + (dir / "teacher") + " --threads 1");
  ASSERT_EQ(eval.status, 0) << eval.output;
  const auto distill = mmkd::testing::run_cli(
      "distill --config " + repo_path("configs/table1/c5_edam_down.yaml") + tiny +
      " --set model.d_model=8 --set model.layers=2 --set model.heads=2 --teacher " +
      (dir / "teacher") + " --run " + (dir / "student"));
  ASSERT_EQ(distill.status, 0) << distill.output;
  EXPECT_TRUE(std::filesystem::exists(dir / "student/metrics.json"));
  EXPECT_NE(distill.output.find("compat=mult"), std::string::npos) << distill.output;
  // An existing run is never overwritten.
  const auto again = mmkd::testing::run_cli(
      "import mult --state-dict " + f.dir + "/state_dict.pt --heads 5 --config " +
      repo_path("configs/teacher_mult.yaml") + tiny + " --out " + (dir / "teacher"));
  EXPECT_NE(again.status, 0);
  EXPECT_NE(again.output.find("the directory is not empty"), std::string::npos) << again.output;
  // Without --config: a checkpoint for MOSEI's lengths; a run directory needs data to evaluate.
  const auto file = mmkd::testing::run_cli("import mult --state-dict " + f.dir +
                                           "/state_dict.pt --heads 5 --out " + (dir / "t.pt"));
  ASSERT_EQ(file.status, 0) << file.output;
  EXPECT_NE(file.output.find("inputs V 500x35, A 500x74, L 50x300"), std::string::npos)
      << file.output;
  const auto no_data = mmkd::testing::run_cli("import mult --state-dict " + f.dir +
                                              "/state_dict.pt --heads 5 --out " + (dir / "run2"));
  EXPECT_NE(no_data.status, 0);
  EXPECT_NE(no_data.output.find("a run directory is evaluated on data, so give --config"),
            std::string::npos)
      << no_data.output;
}

// ---- hostile archives (no Python needed) ------------------------------------------------

/// A torch.save-style zip holding `pickle` as data.pkl and `records` under data/.
std::string archive(const std::string& pickle,
                    const std::map<std::string, std::string>& records = {}) {
  std::string bytes;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t n) {
      bytes.append(static_cast<const char*>(data), n);
      return n;
    });
    writer.writeRecord("data.pkl", pickle.data(), pickle.size());
    for (const auto& [name, data] : records)
      writer.writeRecord("data/" + name, data.data(), data.size());
    writer.writeEndOfFile();
  }
  return bytes;
}

std::string refusal_of(const std::string& bytes) {
  try {
    data::read_torch_state_dict_memory(bytes.data(), bytes.size(), "evil.pt");
  } catch (const Error& e) {
    return e.what();
  }
  return "accepted";
}

// Protocol-2 pickles spelled out opcode by opcode.
std::string u32(uint32_t n) { return std::string(reinterpret_cast<const char*>(&n), 4); }
std::string text(const std::string& s) { return "X" + u32(static_cast<uint32_t>(s.size())) + s; }
std::string int32(int32_t n) { return "J" + u32(static_cast<uint32_t>(n)); }
std::string global(const std::string& module, const std::string& name) {
  return "c" + module + "\n" + name + "\n";
}
std::string tuple_of(const std::vector<int>& ints) {
  std::string t = "(";
  for (int i : ints) t += int32(i);
  return t + "t";
}
const std::string kProto = "\x80\x02";
const std::string kEmptyOrderedDict = global("collections", "OrderedDict") + ")R";

TEST(TorchStateDict, RefusesCodeAndNamesTheGlobal) {
  // os.system("echo pwned"): what a malicious "state dict" does.
  const std::string system_call =
      kProto + global("os", "system") + text("echo pwned") + "\x85" + "R.";
  const std::string message = refusal_of(archive(system_call));
  EXPECT_NE(message.find("evil.pt: "), std::string::npos) << message;
  EXPECT_NE(message.find("refers to global 'os.system'"), std::string::npos) << message;
  const std::string eval_call = kProto + global("builtins", "eval") + ")R.";
  EXPECT_NE(refusal_of(archive(eval_call)).find("'builtins.eval'"), std::string::npos);
  // numpy's reconstruction is allowed in data pickles, not in a state dict.
  const std::string numpy = kProto + global("numpy.core.multiarray", "_reconstruct") + ".";
  EXPECT_NE(refusal_of(archive(numpy)).find("'numpy.core.multiarray._reconstruct'"),
            std::string::npos);
  // A storage type is a class, not something to call.
  const std::string storage_call = kProto + global("torch", "FloatStorage") + ")R.";
  EXPECT_NE(refusal_of(archive(storage_call)).find("cannot be called directly"), std::string::npos);
}

/// A state dict {"w": tensor} whose tensor is `sizes` at `offset` (stride 1) over a FloatStorage
/// of `numel` elements, stored as `record_bytes` bytes under key `key`.
std::string one_tensor(int numel, int offset, const std::vector<int>& sizes, size_t record_bytes,
                       const std::string& key = "0") {
  std::string p = kProto + kEmptyOrderedDict + text("w");
  p += global("torch._utils", "_rebuild_tensor_v2") + "(";
  p += "(" + text("storage") + global("torch", "FloatStorage") + text(key) + text("cpu") +
       int32(numel) + "tQ";
  p += int32(offset) + tuple_of(sizes) + tuple_of(std::vector<int>(sizes.size(), 1));
  p += "\x89" + kEmptyOrderedDict + "tRs.";
  return archive(p, {{"0", std::string(record_bytes, '\0')}});
}

TEST(TorchStateDict, ReadsAWellFormedTensorAndRefusesOneOutsideItsStorage) {
  const std::string good = one_tensor(4, 1, {3}, 16);
  const auto sd = data::read_torch_state_dict_memory(good.data(), good.size(), "ok.pt");
  ASSERT_EQ(sd.size(), 1u);
  EXPECT_EQ(sd[0].first, "w");
  EXPECT_EQ(sd[0].second.sizes(), torch::IntArrayRef({3}));
  const std::string past_end = refusal_of(one_tensor(4, 2, {3}, 16));
  EXPECT_NE(past_end.find("reaches element 4 of a storage of 4"), std::string::npos) << past_end;
  const std::string short_record = refusal_of(one_tensor(4, 0, {3}, 8));
  EXPECT_NE(
      short_record.find("storage '0' claims 4 elements of Float but its record holds 8 bytes"),
      std::string::npos)
      << short_record;
  const std::string absent = refusal_of(one_tensor(4, 0, {3}, 16, "9"));
  EXPECT_NE(absent.find("refers to storage '9', which the archive does not hold"),
            std::string::npos)
      << absent;
}

TEST(TorchStateDict, RefusesFilesThatAreNoTorchArchive) {
  TempDir dir("torch_state_dict");
  const std::string legacy = dir / "legacy.pt";
  std::ofstream(legacy, std::ios::binary) << kProto << "garbage";
  try {
    data::read_torch_state_dict(legacy);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("legacy (non-zip) torch.save file"), std::string::npos)
        << e.what();
  }
  const std::string truncated = dir / "truncated.pt";
  const std::string whole = one_tensor(4, 0, {3}, 16);
  std::ofstream(truncated, std::ios::binary) << whole.substr(0, whole.size() / 2);
  EXPECT_THROW(data::read_torch_state_dict(truncated), Error);
  EXPECT_THROW(data::read_torch_state_dict(dir / "absent.pt"), Error);
}

TEST(MultKey, MapsMmkdNamesOntoMults) {
  EXPECT_EQ(mult_key("head.proj1.weight"), "proj1.weight");
  EXPECT_EQ(mult_key("head.out_layer.bias"), "out_layer.bias");
  EXPECT_EQ(mult_key("trans_v_with_a.layers.3.layer_norm1.bias"),
            "trans_v_with_a.layers.3.layer_norms.1.bias");
  EXPECT_EQ(mult_key("trans_l_mem.layers.0.layer_norm0.weight"),
            "trans_l_mem.layers.0.layer_norms.0.weight");
  EXPECT_EQ(mult_key("trans_l_mem.layer_norm.weight"), "trans_l_mem.layer_norm.weight");
  EXPECT_EQ(mult_key("proj_v.weight"), "proj_v.weight");
}

}  // namespace
}  // namespace mmkd::models
