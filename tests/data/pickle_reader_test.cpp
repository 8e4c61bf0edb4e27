#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "mmkd/core/error.h"
#include "mmkd/data/pickle.h"
#include "pickle_test_util.h"

namespace mmkd::data {
namespace {

using Kind = PyValue::Kind;
using pickle_testing::formula;
using pickle_testing::linear;
using pickle_testing::pickle_fixture;

std::string pickle_error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

const NdArray& array_at(const PyValue& dict, const std::string& key) {
  const PyValue* value = dict.find(key);
  EXPECT_NE(value, nullptr) << key;
  EXPECT_TRUE(value->is(Kind::kNdArray)) << key << " is " << value->describe();
  return value->array;
}

void expect_tensor(const NdArray& array, const torch::Tensor& expected, const std::string& dtype) {
  EXPECT_EQ(array.dtype, dtype);
  ASSERT_TRUE(array.is_numeric());
  EXPECT_EQ(array.shape, expected.sizes().vec());
  EXPECT_EQ(array.tensor.scalar_type(), expected.scalar_type());
  EXPECT_TRUE(torch::equal(array.tensor, expected)) << array.tensor << "\nexpected\n" << expected;
}

class PlainPickle : public ::testing::TestWithParam<int> {};

TEST_P(PlainPickle, ReadsEveryValue) {
  const PyRef root =
      read_pickle_file(pickle_fixture("plain_p" + std::to_string(GetParam()) + ".pkl"));
  ASSERT_TRUE(root->is(Kind::kDict));
  expect_tensor(array_at(*root, "a"), formula({2, 3, 4}).to(torch::kFloat), "float32");
  expect_tensor(array_at(*root, "b"), formula({3, 2}, -5.0), "float64");
  expect_tensor(array_at(*root, "empty"), torch::zeros({0, 3}), "float32");
  EXPECT_EQ(root->find("n")->integer, 7);
  EXPECT_EQ(root->find("neg")->integer, -123456);
  EXPECT_EQ(root->find("big")->integer, int64_t{1} << 40);
  EXPECT_EQ(root->find("f")->real, 2.5);
  EXPECT_EQ(root->find("s")->text, "h\xc3\xa9llo \xe4\xb8\x96");
  EXPECT_TRUE(root->find("none")->is(Kind::kNone));
  const PyValue& flags = *root->find("flags");
  ASSERT_EQ(flags.items.size(), 2u);
  EXPECT_TRUE(flags.items[0]->boolean);
  EXPECT_FALSE(flags.items[1]->boolean);
  const PyValue& tuple = *root->find("t");
  ASSERT_TRUE(tuple.is(Kind::kTuple));
  EXPECT_EQ(tuple.items[0]->integer, 1);
  EXPECT_EQ(tuple.items[1]->text, "x");
  EXPECT_EQ(root->find("raw")->as_text(), std::string("\x00\xff\x10", 3));
  // The memo makes one list object appear under two keys.
  EXPECT_EQ(root->find("shared1"), root->find("shared2"));
  EXPECT_EQ(root->find("shared1")->items.size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Protocols, PlainPickle, ::testing::Values(2, 3, 4, 5));

class DtypesPickle : public ::testing::TestWithParam<int> {};

TEST_P(DtypesPickle, ReadsEveryDtype) {
  const PyRef root =
      read_pickle_file(pickle_fixture("dtypes_p" + std::to_string(GetParam()) + ".pkl"));
  const torch::Tensor lin = linear({2, 3});
  expect_tensor(array_at(*root, "i1"), (lin * 3 - 7).to(torch::kChar), "int8");
  expect_tensor(array_at(*root, "i2"), (lin * 300 - 700).to(torch::kShort), "int16");
  expect_tensor(array_at(*root, "i4"), (lin * 100000 - 7).to(torch::kInt), "int32");
  expect_tensor(array_at(*root, "i8"), lin * int64_t{1000000000000} - 7, "int64");
  expect_tensor(array_at(*root, "u1"), (lin * 7).remainder(256).to(torch::kByte), "uint8");
  expect_tensor(array_at(*root, "b1"), lin.remainder(3).eq(0), "bool");
  expect_tensor(array_at(*root, "f2"), (lin.to(torch::kDouble) * 0.25).to(torch::kHalf), "float16");
  EXPECT_EQ(array_at(*root, "U").strings,
            (std::vector<std::string>{"a", "b\xc3\xa9", "", "long\xe4\xb8\x96x"}));
  EXPECT_EQ(array_at(*root, "U").dtype, "<U6");
  EXPECT_EQ(array_at(*root, "S").strings, (std::vector<std::string>{"ab", "", "xyz"}));
  EXPECT_EQ(array_at(*root, "O").strings, (std::vector<std::string>{"first",
                                                                    "s\xc3\xa9"
                                                                    "cond"}));
  EXPECT_EQ(array_at(*root, "O").dtype, "object");
  expect_tensor(array_at(*root, "scalar_f8"), torch::tensor(1.5, torch::kDouble), "float64");
  expect_tensor(array_at(*root, "scalar_i8"), torch::tensor(int64_t{-9}), "int64");
}

INSTANTIATE_TEST_SUITE_P(Protocols, DtypesPickle, ::testing::Values(2, 4));

class OrdersPickle : public ::testing::TestWithParam<int> {};

TEST_P(OrdersPickle, ReadsFortranOrderAndBigEndian) {
  const PyRef root =
      read_pickle_file(pickle_fixture("orders_p" + std::to_string(GetParam()) + ".pkl"));
  const NdArray& f8 = array_at(*root, "f8_F");
  expect_tensor(f8, formula({3, 4, 2}), "float64");
  EXPECT_FALSE(f8.tensor.is_contiguous());  // a view of the file's Fortran-order buffer
  expect_tensor(array_at(*root, "i2_F"), (linear({2, 5}) * 3 - 4).to(torch::kShort), "int16");
  EXPECT_EQ(array_at(*root, "U_F").strings,
            (std::vector<std::string>{"a", "b", "c", "d", "e", "f"}));
  expect_tensor(array_at(*root, "f8_be"), formula({2, 3}), "float64");
  expect_tensor(array_at(*root, "i4_be"), (linear({4}) - 2).to(torch::kInt), "int32");
  EXPECT_EQ(array_at(*root, "U_be").strings, (std::vector<std::string>{"x\xc3\xa9", "yz"}));
}

INSTANTIATE_TEST_SUITE_P(Protocols, OrdersPickle, ::testing::Values(4, 5));

TEST(PickleReader, RefusesGlobalsOutsideTheWhitelist) {
  for (const char* name : {"malicious_p2.pkl", "malicious_p4.pkl"}) {
    const std::string path = pickle_fixture(name);
    const std::string message = pickle_error_of([&] { read_pickle_file(path); });
    EXPECT_NE(
        message.find(path + ": pickle refers to global 'posix.system', which mmkd does not load"),
        std::string::npos)
        << message;
  }
}

TEST(PickleReader, ReportsTruncationWithItsOffset) {
  const std::string path = pickle_fixture("truncated.pkl");
  const std::string size = std::to_string(read_file_bytes(path).size());
  const std::string message = pickle_error_of([&] { read_pickle_file(path); });
  EXPECT_NE(message.find(path + ": truncated pickle (ended at byte " + size + " while reading"),
            std::string::npos)
      << message;
}

TEST(PickleReader, ReportsMissingFilesAndNonPickles) {
  EXPECT_NE(pickle_error_of([] {
              read_pickle_file("/nonexistent/x.pkl");
            }).find("/nonexistent/x.pkl: no such file"),
            std::string::npos);
  const std::string path = pickle_fixture("not_a_pickle.pkl");
  EXPECT_NE(pickle_error_of([&] { read_pickle_file(path); }).find(path + ": not a pickle"),
            std::string::npos);
  EXPECT_NE(pickle_error_of([] {
              read_pickle_memory("", 0, "empty");
            }).find("empty: truncated pickle (ended at byte 0"),
            std::string::npos);
}

TEST(PickleReader, MemoryEntryPointMatchesFileReader) {
  const std::string bytes = read_file_bytes(pickle_fixture("plain_p4.pkl"));
  const PyRef root = read_pickle_memory(bytes.data(), bytes.size());
  EXPECT_TRUE(torch::equal(root->find("a")->array.tensor, formula({2, 3, 4}).to(torch::kFloat)));
}

/// Hostile inputs built opcode by opcode.
std::string parse_error(const std::string& body) {
  const std::string bytes = std::string("\x80\x04", 2) + body;
  return pickle_error_of([&] { read_pickle_memory(bytes.data(), bytes.size(), "hostile"); });
}

TEST(PickleReader, LengthFieldsLargerThanTheInputAreTruncationNotAllocation) {
  EXPECT_NE(
      parse_error(std::string("\x8e\xff\xff\xff\xff\xff\xff\xff\x7f", 9)).find("truncated pickle"),
      std::string::npos);
  EXPECT_NE(parse_error(std::string("X\xff\xff\xff\xff", 5)).find("while reading BINUNICODE"),
            std::string::npos);
  EXPECT_NE(parse_error(std::string("\x95\xff\xff\xff\xff\x00\x00\x00\x00", 9))
                .find("while reading a frame"),
            std::string::npos);
}

TEST(PickleReader, BoundsNestingAndRefusesCycles) {
  EXPECT_NE(parse_error("]" + std::string(1000, '\x85') + ".").find("deeper than 256"),
            std::string::npos);
  // l = []; l.append(l)
  EXPECT_NE(parse_error(std::string("]\x94(h\x00"
                                    "e.",
                                    7))
                .find("contains itself"),
            std::string::npos);
  // A deep chain that is dropped (POP) before STOP must be freed without deep recursion (the
  // bound on decoded values would refuse this chain first; raised, the freeing is tested).
  PickleLimits generous;
  generous.value_factor = 1000;
  const PyRef ok = read_pickle_memory(("\x80\x04]" + std::string(200000, '\x85') + "0N.").data(),
                                      200006, "chain", generous);
  EXPECT_TRUE(ok->is(Kind::kNone));
}

TEST(PickleReader, RefusesMalformedStructure) {
  EXPECT_NE(parse_error("h\x05.").find("memo entry 5 is read before it is written"),
            std::string::npos);
  EXPECT_NE(parse_error(std::string("\x8a\x09", 2) + std::string(9, '\x01') + ".")
                .find("does not fit 64 bits"),
            std::string::npos);
  EXPECT_NE(parse_error("R.").find("pops an empty stack"), std::string::npos);
  EXPECT_NE(parse_error("N").find("missing STOP"), std::string::npos);
  EXPECT_NE(parse_error("t.").find("MARK"), std::string::npos);
  EXPECT_NE(parse_error("ios\nsystem\n.").find("creates objects"), std::string::npos);
  EXPECT_NE(
      parse_error("}Nb.").find(
          "BUILD on a dict of 0 (only numpy arrays and dtypes are rebuilt) (opcode at byte 4)"),
      std::string::npos);
}

TEST(PickleReader, BoundsAllocationByTheInputSize) {
  // _codecs.encode of one memoised 64 KiB str, called again and again: each call allocates
  // 64 KiB, so a small file could ask for gigabytes without the budget.
  std::string body("c_codecs\nencode\nq\x00", 18);
  body += std::string("X\x00\x00\x01\x00", 5) + std::string(65536, 'a');
  body += std::string("\x8c\x06latin1\x86q\x01", 11);
  for (int i = 0; i < 200; ++i) body += std::string("h\x00h\x01R0", 6);
  body += "N.";
  EXPECT_NE(parse_error(body).find("more than its input size allows"), std::string::npos);
}

// A list of 200,000 Nones is a 200 KB file but 50 MB of decoded values (250x).
TEST(PickleReader, BoundsDecodedValuesByTheInputSize) {
  const std::string body = "(" + std::string(200000, 'N') + "l.";
  const std::string message = parse_error(body);
  EXPECT_NE(message.find("more than its input size allows"), std::string::npos) << message;
  EXPECT_NE(message.find("decoded values"), std::string::npos) << message;
  // The same file within a raised bound reads: the limit, not the content, refused it.
  PickleLimits generous;
  generous.value_factor = 1000;
  const std::string bytes = std::string("\x80\x04", 2) + body;
  const PyRef list = read_pickle_memory(bytes.data(), bytes.size(), "nones", generous);
  EXPECT_EQ(list->items.size(), 200000u);
}

// MEMOIZE is one byte and adds a memo entry each time: bounded like the values.
TEST(PickleReader, BoundsMemoEntriesByTheInputSize) {
  const std::string message = parse_error("N" + std::string(400000, '\x94') + ".");
  EXPECT_NE(message.find("decoded values"), std::string::npos) << message;
}

TEST(PickleReader, WhitelistIsExactlyNumpyReconstruction) {
  const auto& allowed = pickle_allowed_globals();
  EXPECT_NE(std::find(allowed.begin(), allowed.end(), "numpy.core.multiarray._reconstruct"),
            allowed.end());
  EXPECT_EQ(std::find(allowed.begin(), allowed.end(), "builtins.eval"), allowed.end());
  EXPECT_NE(parse_error("cbuiltins\neval\n.").find("global 'builtins.eval'"), std::string::npos);
  EXPECT_NE(parse_error("\x8c\x02os\x8c\x06system\x93.").find("global 'os.system'"),
            std::string::npos);
}

}  // namespace
}  // namespace mmkd::data
