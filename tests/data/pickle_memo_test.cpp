// Pickles in which Python's memo shares one object between keys: one dict under two splits,
// one array under two splits, references by BINGET, LONG_BINGET and protocol 0's GET.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "mmkd/core/error.h"
#include "mmkd/data/mosei_io.h"
#include "mmkd/data/pickle.h"
#include "pickle_test_util.h"

namespace mmkd::data {
namespace {

// 300 distinct strings come first, so the shared objects get memo indices above 255 and the
// later references are LONG_BINGET (protocol 2 also uses BINPUT/LONG_BINPUT, 4 and 5 MEMOIZE).
const char* kWriter = R"PY(
import pickle, sys
import numpy as np
protocol, path = int(sys.argv[1]), sys.argv[2]
rng = np.random.RandomState(0)
def split(n):
    return {'raw_text': ['w%d' % i for i in range(300)],
            'vision': rng.randn(n, 4, 3).astype(np.float32),
            'audio': rng.randn(n, 4, 2).astype(np.float64),
            'text': rng.randn(n, 2, 5).astype(np.float32),
            'labels': rng.uniform(-3, 3, (n, 1, 1)).astype(np.float32)}
shared = split(6)
# The test split reuses train's arrays (not its dict): shared arrays under two splits.
test = dict(shared, raw_text=['t%d' % i for i in range(300)],
            labels=rng.uniform(-3, 3, (6, 1, 1)).astype(np.float32))
data = {'train': shared, 'valid': shared, 'test': test}
with open(path, 'wb') as f:
    pickle.dump(data, f, protocol=protocol)
ops = {op.name for op, _, _ in __import__('pickletools').genops(open(path, 'rb').read())}
print(' '.join(sorted(o for o in ops if 'GET' in o or 'PUT' in o or o == 'MEMOIZE')))
)PY";

class SharedMemo : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    if (!pickle_testing::reference_python_available())
      GTEST_SKIP() << "/usr/bin/python3 with numpy is not installed; it writes these pickles";
    base_ = ::testing::TempDir() + "memo_" + std::to_string(::getpid()) + "_p" +
            std::to_string(GetParam());
    FILE* file = std::fopen((base_ + ".py").c_str(), "w");
    ASSERT_NE(file, nullptr);
    std::fputs(kWriter, file);
    std::fclose(file);
    opcodes_ = pickle_testing::run_command("/usr/bin/python3 " + base_ + ".py " +
                                           std::to_string(GetParam()) + " " + base_ + ".pkl 2>&1");
  }
  void TearDown() override {
    std::remove((base_ + ".py").c_str());
    std::remove((base_ + ".pkl").c_str());
  }
  std::string base_, opcodes_;
};

TEST_P(SharedMemo, SharedDictAndArraysReadAsTheSameValues) {
  // The file really exercises the memo (else this test could not fail).
  EXPECT_NE(opcodes_.find("LONG_BINGET"), std::string::npos) << opcodes_;
  const MoseiData data = load_mosei(base_ + ".pkl");
  const Split& train = data.split("train");
  const Split& valid = data.split("valid");
  const Split& test = data.split("test");
  for (Modality m : kModalities) {
    EXPECT_TRUE(torch::equal(train.feature(m), valid.feature(m))) << modality_key(m);
    EXPECT_TRUE(torch::equal(train.feature(m), test.feature(m))) << modality_key(m);
  }
  EXPECT_TRUE(torch::equal(train.labels, valid.labels));
  EXPECT_EQ(train.feature(Modality::kVideo).sizes(), torch::IntArrayRef({6, 4, 3}));
  EXPECT_EQ(data.source_dtypes.at("test/audio"), "float64");
}

// A memo reference shares the node; it must not copy it (a file of references would otherwise
// buy memory far beyond its size).
TEST_P(SharedMemo, ReferencesShareOneNodeAndOneTensor) {
  const PyRef root = read_pickle_file(base_ + ".pkl");
  EXPECT_EQ(root->find("train"), root->find("valid"));
  EXPECT_EQ(root->find("train")->find("vision"), root->find("test")->find("vision"));
  const MoseiData data = load_mosei(base_ + ".pkl");
  EXPECT_EQ(data.split("train").feature(Modality::kVideo).data_ptr(),
            data.split("test").feature(Modality::kVideo).data_ptr());
}

INSTANTIATE_TEST_SUITE_P(Protocols, SharedMemo, ::testing::Values(2, 4, 5));

// Protocol 0's PUT/GET (decimal indices on a line) are legal inside a protocol-2 pickle.
TEST(PickleMemo, TextPutAndGetAreRead) {
  // {'a': [7], 'b': <the same list>}
  const std::string bytes = std::string(
                                "\x80\x02}q\x00(X\x01\x00\x00\x00"
                                "a]p1\nK\x07"
                                "a",
                                19) +
                            std::string(
                                "X\x01\x00\x00\x00"
                                "bg1\nu.",
                                11);
  const PyRef root = read_pickle_memory(bytes.data(), bytes.size(), "text-memo");
  ASSERT_TRUE(root->is(PyValue::Kind::kDict));
  ASSERT_NE(root->find("a"), nullptr);
  EXPECT_EQ(root->find("a"), root->find("b"));
  ASSERT_EQ(root->find("a")->items.size(), 1u);
  EXPECT_EQ(root->find("a")->items[0]->integer, 7);
  const std::string bad = std::string("\x80\x02]p1x\n.", 8);
  try {
    read_pickle_memory(bad.data(), bad.size(), "bad-put");
    FAIL() << "a PUT index that is not a number must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad-put: PUT memo index '1x' is not a decimal number"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace mmkd::data
