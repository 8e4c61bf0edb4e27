#include "mmkd/data/mosei_io.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "../support/temp_files.h"
#include "mmkd/core/error.h"
#include "mmkd/data/pickle.h"
#include "mmkd/data/pickle_writer.h"
#include "pickle_test_util.h"

namespace mmkd::data {
namespace {

using Kind = PyValue::Kind;
using pickle_testing::formula;
using pickle_testing::linear;
using pickle_testing::pickle_fixture;

// The fixture script's sizes (make_pickle_fixtures.py: SIZES, STEPS, WIDTHS).
const std::map<std::string, int64_t> kSizes = {{"train", 4}, {"valid", 2}, {"test", 3}};
const std::map<std::string, int64_t> kSplitNo = {{"train", 0}, {"valid", 1}, {"test", 2}};
const int64_t kSteps[3] = {7, 6, 5};   // vision, audio, text
const int64_t kWidths[3] = {3, 4, 6};  // vision, audio, text

torch::Tensor expected_feature(const std::string& split, Modality m) {
  const auto i = static_cast<int64_t>(modality_index(m));
  return formula({kSizes.at(split), kSteps[i], kWidths[i]},
                 1000.0 * i + 10000.0 * kSplitNo.at(split))
      .to(torch::kFloat);
}

torch::Tensor expected_labels(const std::string& split) {
  const torch::Tensor i = torch::arange(kSizes.at(split), torch::kLong) + 5 * kSplitNo.at(split);
  return ((i * 7).remainder(19) - 9).to(torch::kDouble).div(3.0).to(torch::kFloat);
}

std::string load_error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void expect_mult_fixture(const MoseiData& data) {
  EXPECT_EQ(data.layout, "mult");
  for (const auto& [name, n] : kSizes) {
    const Split& split = data.split(name);
    ASSERT_EQ(split.size(), n);
    for (Modality m : kModalities) {
      torch::Tensor expected = expected_feature(name, m);
      if (name == "train" && m == Modality::kAudio) {
        expected[0][0][0] = 0;  // NaN, +inf and -inf in the file
        expected[1][2][3] = 0;
        expected[2][5][1] = 0;
      }
      if (name == "test" && m == Modality::kText) expected[0][1][2] = 0;
      EXPECT_TRUE(torch::equal(split.feature(m), expected)) << name << "/" << modality_key(m);
      EXPECT_TRUE(split.feature(m).is_contiguous());
      const torch::Tensor events = (linear({n, kSteps[modality_index(m)]}).remainder(3)).eq(0);
      EXPECT_TRUE(torch::equal(split.event(m), events)) << name << "/events/" << modality_key(m);
    }
    EXPECT_TRUE(torch::equal(split.labels, expected_labels(name))) << name;
    ASSERT_EQ(split.ids.size(), static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      EXPECT_EQ(split.ids[i], "vid\xc3\xa9_" + name + "_" + std::to_string(i));
  }
  EXPECT_EQ(data.cleaned.replaced.at("train"), (std::array<int64_t, 3>{0, 3, 0}));
  EXPECT_EQ(data.cleaned.replaced.at("test"), (std::array<int64_t, 3>{0, 0, 1}));
  EXPECT_EQ(data.cleaned.total(), 4);
}

class MultFixture : public ::testing::TestWithParam<int> {};

TEST_P(MultFixture, LoadsEveryValue) {
  const std::string path = pickle_fixture("mult_p" + std::to_string(GetParam()) + ".pkl");
  const MoseiData data = load_mosei(path);
  EXPECT_EQ(data.source, path);
  expect_mult_fixture(data);
  EXPECT_EQ(data.source_dtypes.at("valid/vision"), "float64");
  EXPECT_EQ(data.source_dtypes.at("train/vision"), "float32");
}

INSTANTIATE_TEST_SUITE_P(Protocols, MultFixture, ::testing::Values(2, 4));

TEST(MoseiIo, LoadsMmsaLayout) {
  const MoseiData data = load_mosei(pickle_fixture("mmsa_p4.pkl"));
  EXPECT_EQ(data.layout, "mmsa");
  for (const auto& [name, n] : kSizes) {
    const Split& split = data.split(name);
    for (Modality m : kModalities)
      EXPECT_TRUE(torch::equal(split.feature(m), expected_feature(name, m)))
          << name << "/" << modality_key(m);
    EXPECT_TRUE(torch::equal(split.labels, expected_labels(name)));
    ASSERT_EQ(split.ids.size(), static_cast<size_t>(n));
    EXPECT_EQ(split.ids.back(), "clip_" + std::to_string(n - 1));
    EXPECT_FALSE(split.has_events());
  }
  EXPECT_EQ(data.source_dtypes.at("train/audio"), "float64");
  EXPECT_EQ(data.cleaned.total(), 0);
}

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "mosei_" + std::to_string(::getpid()) + "_" + name;
}

TEST(MoseiIo, SaveThenLoadIsIdentical) {
  const MoseiData data = load_mosei(pickle_fixture("mult_p4.pkl"));
  const std::string path = temp_path("roundtrip.pkl");
  save_mosei(data, path);
  EXPECT_TRUE(mmkd::testing::temp_files_of(path).empty());
  const MoseiData back = load_mosei(path);
  for (const auto& [name, split] : data.splits) {
    const Split& other = back.split(name);
    for (Modality m : kModalities) {
      EXPECT_TRUE(torch::equal(split.feature(m), other.feature(m)));
      EXPECT_TRUE(torch::equal(split.event(m), other.event(m)));
    }
    EXPECT_TRUE(torch::equal(split.labels, other.labels));
    EXPECT_EQ(split.ids, other.ids);
  }
  if (pickle_testing::reference_python_available()) {
    // MulT's own loader only needs pickle + numpy; check the layout it indexes.
    const std::string out = pickle_testing::run_command(
        "/usr/bin/python3 -c \"import pickle,sys; d=pickle.load(open(sys.argv[1],'rb')); "
        "t=d['train']; "
        "print(t['vision'].shape, t['audio'].dtype, t['labels'].shape, list(t['id'])[:1], "
        "t['events']['text'].dtype)\" " +
        path);
    EXPECT_EQ(out, "(4, 7, 3) float32 (4, 1, 1) ['vid\xc3\xa9_train_0'] uint8\n");
  }
  std::remove(path.c_str());
}

TEST(MoseiIo, FailedSaveLeavesNoFile) {
  const MoseiData data = load_mosei(pickle_fixture("mmsa_p4.pkl"));
  const std::string dir = temp_path("target_dir");
  std::filesystem::create_directories(dir + "/occupied");  // rename onto a non-empty dir fails
  EXPECT_THROW(save_mosei(data, dir), Error);
  EXPECT_TRUE(mmkd::testing::temp_files_of(dir).empty());
  std::filesystem::remove_all(dir);
  EXPECT_THROW(save_mosei(data, "/nonexistent/dir/out.pkl"), Error);
}

// ---- validation: each broken file is a small tree written by the pickle writer ------------

PyRef split_tree(int64_t n, int64_t t_vision = 7, int64_t f_vision = 3) {
  PyRef split = PyValue::make(Kind::kDict);
  split->set("vision", PyValue::make_array(torch::zeros({n, t_vision, f_vision})));
  split->set("audio", PyValue::make_array(torch::zeros({n, 6, 4})));
  split->set("text", PyValue::make_array(torch::zeros({n, 5, 6})));
  split->set("labels", PyValue::make_array(torch::zeros({n, 1, 1})));
  return split;
}

PyRef dataset_tree() {
  PyRef root = PyValue::make(Kind::kDict);
  root->set("train", split_tree(4));
  root->set("valid", split_tree(2));
  root->set("test", split_tree(3));
  return root;
}

/// Writes `root`, loads it, and returns the error (the file path is replaced by "F").
std::string load_error(const PyRef& root) {
  const std::string path = temp_path("broken.pkl");
  write_pickle_file(*root, path);
  std::string message = load_error_of([&] { load_mosei(path); });
  std::remove(path.c_str());
  const size_t at = message.find(path);
  if (at != std::string::npos) message.replace(at, path.size(), "F");
  return message;
}

void replace_key(PyValue& dict, const std::string& key, PyRef value) {
  for (auto& [k, v] : dict.entries)
    if (k->as_text() == key) v = std::move(value);
}

TEST(MoseiIoValidation, ReportsFileProblems) {
  EXPECT_EQ(load_error_of([] { load_mosei("/nonexistent/mosei.pkl"); }),
            "/nonexistent/mosei.pkl: no such file");
  const std::string not_pickle = pickle_fixture("not_a_pickle.pkl");
  EXPECT_NE(load_error_of([&] { load_mosei(not_pickle); }).find(not_pickle + ": not a pickle"),
            std::string::npos);
  const std::string truncated = pickle_fixture("truncated.pkl");
  EXPECT_NE(load_error_of([&] { load_mosei(truncated); }).find(truncated + ": truncated pickle"),
            std::string::npos);
  const std::string malicious = pickle_fixture("malicious_p4.pkl");
  EXPECT_NE(load_error_of([&] { load_mosei(malicious); }).find("'posix.system'"),
            std::string::npos);
}

// An empty split used to fail only inside batching ("cannot batch an empty split"), unnamed.
TEST(MoseiIoValidation, EmptySplitIsNamed) {
  PyRef root = dataset_tree();
  replace_key(*root, "valid", split_tree(0));
  EXPECT_EQ(load_error(root), "F: split 'valid' holds no samples; every split needs at least one");
}

TEST(MoseiIoValidation, ReportsStructureProblems) {
  EXPECT_EQ(load_error(PyValue::make(Kind::kList)),
            "F: top level is a list of 0; expected a dict with splits 'train', 'valid', 'test'");
  PyRef root = PyValue::make(Kind::kDict);
  root->set("train", split_tree(4));
  root->set("test", split_tree(3));
  EXPECT_EQ(load_error(root), "F: missing split 'valid' (found keys: 'train', 'test')");

  root = dataset_tree();
  PyRef train = split_tree(4);
  train->entries.erase(train->entries.begin() + 1);  // drop 'audio'
  replace_key(*root, "train", train);
  EXPECT_EQ(load_error(root),
            "F: split 'train' has no key 'audio' (found keys: 'vision', 'text', 'labels')");
}

TEST(MoseiIoValidation, ReportsShapeProblems) {
  PyRef root = dataset_tree();
  replace_key(*root->find("train"), "vision", PyValue::make_array(torch::zeros({10, 35})));
  EXPECT_EQ(load_error(root), "F: 'train/vision' has shape [10,35]; expected rank 3 [N,T,F]");

  root = dataset_tree();
  replace_key(*root->find("valid"), "audio", PyValue::make_array(torch::zeros({3, 6, 4})));
  EXPECT_EQ(load_error(root), "F: split 'valid': 'audio' has 3 samples but 'vision' has 2");

  root = dataset_tree();
  replace_key(*root->find("test"), "labels", PyValue::make_array(torch::zeros({2, 1, 1})));
  EXPECT_EQ(load_error(root),
            "F: 'test/labels' has shape [2,1,1]; expected [N,1,1] with N = 3 as the features");

  root = dataset_tree();
  replace_key(*root, "test", split_tree(3, 7, 5));
  EXPECT_EQ(load_error(root), "F: 'test/vision' has 5 features per step but 'train/vision' has 3");

  root = dataset_tree();
  PyRef events = PyValue::make(Kind::kDict);
  events->set("vision", PyValue::make_array(torch::zeros({4, 7}, torch::kByte)));
  events->set("audio", PyValue::make_array(torch::zeros({4, 5}, torch::kByte)));
  events->set("text", PyValue::make_array(torch::zeros({4, 5}, torch::kByte)));
  root->find("train")->set("events", events);
  EXPECT_EQ(load_error(root),
            "F: 'train/events/audio' has shape [4,5]; expected [4,6] like its features");
}

TEST(MoseiIoValidation, ReportsBadLabels) {
  PyRef root = dataset_tree();
  replace_key(*root->find("train"), "labels",
              PyValue::make_array(torch::tensor({0.0F, NAN, 1.0F, 2.0F}).view({4, 1, 1})));
  EXPECT_EQ(load_error(root), "F: 'train/labels'[1] is nan; expected a sentiment in [-3, 3]");

  root = dataset_tree();
  PyRef valid = split_tree(2);
  valid->entries.pop_back();  // MMSA names its labels regression_labels [N]
  valid->set("regression_labels", PyValue::make_array(torch::tensor({-3.00005F, 3.5F})));
  replace_key(*root, "valid", valid);
  EXPECT_EQ(load_error(root),
            "F: 'valid/regression_labels'[1] is 3.5; expected a sentiment in [-3, 3]");
}

}  // namespace
}  // namespace mmkd::data
