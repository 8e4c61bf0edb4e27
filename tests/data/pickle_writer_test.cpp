#include "mmkd/data/pickle_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

#include "mmkd/core/error.h"
#include "mmkd/data/pickle.h"
#include "pickle_test_util.h"

namespace mmkd::data {
namespace {

using Kind = PyValue::Kind;
using pickle_testing::formula;
using pickle_testing::linear;

/// Every kind the writer supports, with values from the fixtures' formulas.
PyRef sample_tree() {
  PyRef root = PyValue::make(Kind::kDict);
  root->set("f4", PyValue::make_array(formula({2, 3, 4}).to(torch::kFloat)));
  root->set("f8", PyValue::make_array(formula({3, 2}, -5.0)));
  root->set("f8_T", PyValue::make_array(formula({3, 2}).t()));  // non-contiguous input
  root->set("f2", PyValue::make_array((linear({5}).to(torch::kDouble) * 0.25).to(torch::kHalf)));
  root->set("i1", PyValue::make_array((linear({2, 3}) * 3 - 7).to(torch::kChar)));
  root->set("i4", PyValue::make_array((linear({4}) * 100000 - 7).to(torch::kInt)));
  root->set("i8", PyValue::make_array(linear({2, 2}) * int64_t{1000000000000} - 7));
  root->set("u1", PyValue::make_array((linear({6}) * 7).to(torch::kByte)));
  root->set("b1", PyValue::make_array(linear({2, 3}).remainder(3).eq(0)));
  root->set("empty", PyValue::make_array(torch::zeros({0, 3})));
  root->set("ids", PyValue::make_string_array({"a", "b\xc3\xa9", ""}, {3}));
  root->set("n", PyValue::make_int(-123456789012));
  root->set("small", PyValue::make_int(300));
  root->set("x", PyValue::make_float(-2.25));
  root->set("s", PyValue::make_str(std::string(300, 'z')));
  root->set("none", PyValue::make(Kind::kNone));
  PyRef list = PyValue::make(Kind::kList);
  list->items = {PyValue::make_int(1), PyValue::make_str("two")};
  root->set("list", list);
  PyRef tuple = PyValue::make(Kind::kTuple);
  tuple->items = {PyValue::make_float(0.5)};
  root->set("tuple", tuple);
  root->set("empty_dict", PyValue::make(Kind::kDict));
  return root;
}

void expect_same_array(const PyValue& root, const PyValue& back, const std::string& key) {
  const NdArray& a = root.find(key)->array;
  const NdArray& b = back.find(key)->array;
  EXPECT_EQ(a.dtype, b.dtype) << key;
  EXPECT_EQ(a.shape, b.shape) << key;
  EXPECT_EQ(a.strings, b.strings) << key;
  if (a.is_numeric()) {
    EXPECT_TRUE(torch::equal(a.tensor, b.tensor)) << key;
  }
}

TEST(PickleWriter, ReaderReadsBackEveryValue) {
  const PyRef root = sample_tree();
  const std::string bytes = write_pickle_bytes(*root);
  const PyRef back = read_pickle_memory(bytes.data(), bytes.size());
  for (const char* key : {"f4", "f8", "f8_T", "f2", "i1", "i4", "i8", "u1", "b1", "empty", "ids"})
    expect_same_array(*root, *back, key);
  EXPECT_EQ(back->find("n")->integer, -123456789012);
  EXPECT_EQ(back->find("small")->integer, 300);
  EXPECT_EQ(back->find("x")->real, -2.25);
  EXPECT_EQ(back->find("s")->text, std::string(300, 'z'));
  EXPECT_TRUE(back->find("none")->is(Kind::kNone));
  EXPECT_EQ(back->find("list")->items[1]->text, "two");
  EXPECT_TRUE(back->find("tuple")->is(Kind::kTuple));
  EXPECT_TRUE(back->find("empty_dict")->is(Kind::kDict));
  EXPECT_EQ(back->text_keys(), root->text_keys());
}

TEST(PickleWriter, FileOutputEqualsMemoryOutput) {
  const PyRef root = sample_tree();
  const std::string path = ::testing::TempDir() + "writer_" + std::to_string(::getpid()) + ".pkl";
  write_pickle_file(*root, path);
  const PyRef back = read_pickle_file(path);
  std::remove(path.c_str());
  expect_same_array(*root, *back, "f4");
  EXPECT_EQ(back->entries.size(), root->entries.size());
}

// C++ writer -> Python's pickle + numpy 1.24 -> checks against the same formulas.
TEST(PickleWriter, PythonReadsItBack) {
  if (!pickle_testing::reference_python_available())
    GTEST_SKIP() << "/usr/bin/python3 with numpy is not installed; the round trip needs it";
  const std::string path =
      ::testing::TempDir() + "writer_py_" + std::to_string(::getpid()) + ".pkl";
  write_pickle_file(*sample_tree(), path);
  const std::string script = R"PY(
import pickle, sys
import numpy as np
d = pickle.load(open(sys.argv[1], 'rb'))
def formula(shape, offset=0.0):
    w = [1000.0, 100.0, 10.0, 0.5][-len(shape):]
    x = np.full(shape, offset)
    for a, wa in enumerate(w):
        x = x + np.arange(shape[a]).reshape([-1 if b == a else 1 for b in range(len(shape))]) * wa
    return x
lin = lambda shape: np.arange(int(np.prod(shape))).reshape(shape)
checks = [
    d['f4'].dtype == np.float32 and np.array_equal(d['f4'], formula((2, 3, 4))),
    d['f8'].dtype == np.float64 and np.array_equal(d['f8'], formula((3, 2), -5.0)),
    np.array_equal(d['f8_T'], formula((3, 2)).T),
    d['f2'].dtype == np.float16 and np.array_equal(d['f2'], lin((5,)) * 0.25),
    d['i1'].dtype == np.int8 and np.array_equal(d['i1'], lin((2, 3)) * 3 - 7),
    d['i4'].dtype == np.int32 and np.array_equal(d['i4'], lin((4,)) * 100000 - 7),
    d['i8'].dtype == np.int64 and np.array_equal(d['i8'], lin((2, 2)) * 10**12 - 7),
    d['u1'].dtype == np.uint8 and np.array_equal(d['u1'], lin((6,)) * 7),
    d['b1'].dtype == np.bool_ and np.array_equal(d['b1'], lin((2, 3)) % 3 == 0),
    d['empty'].shape == (0, 3),
    list(d['ids']) == ['a', 'b\u00e9', ''],
    d['n'] == -123456789012 and d['small'] == 300 and d['x'] == -2.25,
    d['s'] == 'z' * 300 and d['none'] is None,
    d['list'] == [1, 'two'] and d['tuple'] == (0.5,) and d['empty_dict'] == {},
]
print('OK' if all(checks) else 'FAILED %s' % [i for i, c in enumerate(checks) if not c])
)PY";
  const std::string script_path = path + ".py";
  FILE* file = std::fopen(script_path.c_str(), "w");
  ASSERT_NE(file, nullptr);
  std::fputs(script.c_str(), file);
  std::fclose(file);
  const std::string output =
      pickle_testing::run_command("/usr/bin/python3 " + script_path + " " + path + " 2>&1");
  std::remove(script_path.c_str());
  EXPECT_EQ(output, "OK\n");
  // And the C++ reader reads the same file back identically.
  const PyRef back = read_pickle_file(path);
  std::remove(path.c_str());
  EXPECT_TRUE(torch::equal(back->find("f4")->array.tensor, formula({2, 3, 4}).to(torch::kFloat)));
}

TEST(PickleWriter, RefusesWhatPythonCouldNotReadBack) {
  PyRef root = PyValue::make(Kind::kDict);
  root->set("d", PyValue::make(Kind::kDtype));
  EXPECT_THROW(write_pickle_bytes(*root), Error);
  EXPECT_THROW(write_pickle_file(*root, "/nonexistent/dir/x.pkl"), Error);
}

}  // namespace
}  // namespace mmkd::data
