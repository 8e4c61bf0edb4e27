#include "mmkd/data/pickle_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>

#include "mmkd/core/atomic_file.h"
#include "mmkd/core/error.h"

namespace mmkd::data {

namespace {

using Kind = PyValue::Kind;

/// Emits opcodes to a byte sink; recursion follows the value tree (callers build shallow trees).
class PickleWriter {
 public:
  using Sink = std::function<void(const void*, size_t)>;
  explicit PickleWriter(Sink sink) : sink_(std::move(sink)) {}

  void write_document(const PyValue& root) {
    op(0x80);
    byte(4);
    value(root, 0);
    op('.');
  }

 private:
  void bytes(const void* data, size_t n) {
    if (n > 0) sink_(data, n);
  }
  void byte(uint8_t b) { bytes(&b, 1); }
  void op(uint8_t code) { byte(code); }
  void uint_le(uint64_t v, int n) {
    uint8_t raw[8];
    for (int i = 0; i < n; ++i) raw[i] = static_cast<uint8_t>(v >> (8 * i));
    bytes(raw, static_cast<size_t>(n));
  }

  void value(const PyValue& v, int depth);
  void integer(int64_t v);
  void real(double v);
  void str(const std::string& text);
  void raw_bytes(const void* data, uint64_t n);
  void global(const char* module, const char* name) {
    op('c');
    bytes(module, std::strlen(module));
    byte('\n');
    bytes(name, std::strlen(name));
    byte('\n');
  }
  void sequence(const std::vector<PyRef>& items, bool tuple, int depth);
  void dict(const PyValue& v, int depth);
  void ndarray(const NdArray& array, int depth);
  void dtype(const char* spec, char order, int flags);

  Sink sink_;
};

void PickleWriter::value(const PyValue& v, int depth) {
  MMKD_CHECK(depth < 256, "pickle writer: value nested deeper than 256 levels");
  switch (v.kind) {
    case Kind::kNone:
      op('N');
      return;
    case Kind::kBool:
      op(v.boolean ? 0x88 : 0x89);
      return;
    case Kind::kInt:
      integer(v.integer);
      return;
    case Kind::kFloat:
      real(v.real);
      return;
    case Kind::kStr:
      str(v.text);
      return;
    case Kind::kBytes: {
      const torch::Tensor data = v.bytes.contiguous();
      raw_bytes(data.numel() > 0 ? data.data_ptr() : nullptr, static_cast<uint64_t>(data.numel()));
      return;
    }
    case Kind::kList:
      sequence(v.items, false, depth);
      return;
    case Kind::kTuple:
      sequence(v.items, true, depth);
      return;
    case Kind::kDict:
      dict(v, depth);
      return;
    case Kind::kNdArray:
      ndarray(v.array, depth);
      return;
    case Kind::kDtype:
    case Kind::kGlobal:
      break;
  }
  MMKD_FAIL("pickle writer: cannot write a ", v.describe());
}

void PickleWriter::integer(int64_t v) {
  if (v >= 0 && v < 256) {
    op('K');
    uint_le(static_cast<uint64_t>(v), 1);
  } else if (v >= 0 && v < 65536) {
    op('M');
    uint_le(static_cast<uint64_t>(v), 2);
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    op('J');
    uint_le(static_cast<uint64_t>(v), 4);
  } else {
    op(0x8a);  // LONG1: little-endian two's complement
    byte(8);
    uint_le(static_cast<uint64_t>(v), 8);
  }
}

void PickleWriter::real(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  op('G');  // BINFLOAT is big-endian
  for (int i = 7; i >= 0; --i) byte(static_cast<uint8_t>(bits >> (8 * i)));
}

void PickleWriter::str(const std::string& text) {
  if (text.size() < 256) {
    op(0x8c);
    uint_le(text.size(), 1);
  } else if (text.size() <= UINT32_MAX) {
    op('X');
    uint_le(text.size(), 4);
  } else {
    op(0x8d);
    uint_le(text.size(), 8);
  }
  bytes(text.data(), text.size());
}

void PickleWriter::raw_bytes(const void* data, uint64_t n) {
  if (n < 256) {
    op('C');
    uint_le(n, 1);
  } else if (n <= UINT32_MAX) {
    op('B');
    uint_le(n, 4);
  } else {
    op(0x8e);
    uint_le(n, 8);
  }
  bytes(data, static_cast<size_t>(n));
}

void PickleWriter::sequence(const std::vector<PyRef>& items, bool tuple, int depth) {
  if (items.empty()) {
    op(tuple ? ')' : ']');
    return;
  }
  if (!tuple) op(']');
  op('(');
  for (const PyRef& item : items) value(*item, depth + 1);
  op(tuple ? 't' : 'e');
}

void PickleWriter::dict(const PyValue& v, int depth) {
  op('}');
  if (v.entries.empty()) return;
  op('(');
  for (const auto& [key, item] : v.entries) {
    value(*key, depth + 1);
    value(*item, depth + 1);
  }
  op('u');
}

/// numpy.dtype(spec, False, True) followed by its __setstate__ (version 3).
void PickleWriter::dtype(const char* spec, char order, int flags) {
  global("numpy", "dtype");
  str(spec);
  op(0x89);
  op(0x88);
  op(0x87);
  op('R');
  op('(');
  integer(3);
  str(std::string(1, order));
  op('N');
  op('N');
  op('N');
  integer(-1);
  integer(-1);
  integer(flags);
  op('t');
  op('b');
}

struct DtypeSpec {
  const char* spec;
  char order;
};

DtypeSpec spec_of(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat:
      return {"f4", '<'};
    case torch::kDouble:
      return {"f8", '<'};
    case torch::kHalf:
      return {"f2", '<'};
    case torch::kChar:
      return {"i1", '|'};
    case torch::kShort:
      return {"i2", '<'};
    case torch::kInt:
      return {"i4", '<'};
    case torch::kLong:
      return {"i8", '<'};
    case torch::kByte:
      return {"u1", '|'};
    case torch::kBool:
      return {"b1", '|'};
    default:
      MMKD_FAIL("pickle writer: tensor dtype ", c10::toString(type), " has no numpy equivalent");
  }
}

// numpy's own protocol-4 form: _reconstruct(ndarray, (0,), b'b') then BUILD with
// (1, shape, dtype, is_fortran, data); object arrays carry a list of their elements.
void PickleWriter::ndarray(const NdArray& array, int depth) {
  const bool numeric = array.tensor.defined();
  MMKD_CHECK(numeric || array.is_strings(), "pickle writer: array of dtype ", array.dtype,
             " holds neither a tensor nor its strings");
  global("numpy.core.multiarray", "_reconstruct");
  global("numpy", "ndarray");
  integer(0);
  op(0x85);
  raw_bytes("b", 1);
  op(0x87);
  op('R');
  op('(');
  integer(1);
  const std::vector<int64_t> shape = numeric ? array.tensor.sizes().vec() : array.shape;
  op('(');
  for (int64_t d : shape) integer(d);
  op('t');
  if (numeric) {
    const DtypeSpec spec = spec_of(array.tensor.scalar_type());
    dtype(spec.spec, spec.order, 0);
    op(0x89);
    const torch::Tensor data = array.tensor.cpu().contiguous();
    raw_bytes(data.numel() > 0 ? data.data_ptr() : nullptr, static_cast<uint64_t>(data.nbytes()));
  } else {
    dtype("O8", '|', 63);
    op(0x89);
    std::vector<PyRef> items;
    for (const std::string& s : array.strings) items.push_back(PyValue::make_str(s));
    sequence(items, false, depth);
  }
  op('t');
  op('b');
}

}  // namespace

void write_pickle_file(const PyValue& root, const std::string& path) {
  write_file_atomic(path, [&](AtomicOutput& out) {
    PickleWriter writer([&](const void* data, size_t n) { out.write(data, n); });
    writer.write_document(root);
  });
}

std::string write_pickle_bytes(const PyValue& root) {
  std::string out;
  PickleWriter writer(
      [&](const void* data, size_t n) { out.append(static_cast<const char*>(data), n); });
  writer.write_document(root);
  return out;
}

}  // namespace mmkd::data
