#include "pickle_numpy.h"

#include <algorithm>
#include <cstring>

#include "mmkd/core/error.h"

namespace mmkd::data::detail {

using Kind = PyValue::Kind;

void AllocationBudget::charge(uint64_t bytes, const char* what) {
  MMKD_CHECK(bytes <= left_,
             "pickle would make the reader allocate more than its input size allows (", bytes,
             " more bytes for ", what, "); refusing a hostile or corrupt file");
  left_ -= bytes;
}

torch::Tensor allocate_bytes(uint64_t n, AllocationBudget& budget, const char* what) {
  budget.charge(n, what);
  try {
    return torch::empty({static_cast<int64_t>(n)}, torch::kUInt8);
  } catch (const std::exception&) {
    MMKD_FAIL("out of memory allocating ", n, " bytes for ", what);
  }
}

namespace {

bool is_order_char(char c) { return c == '<' || c == '>' || c == '|' || c == '='; }

// '=' (native) is little-endian on every machine mmkd supports.
char normalise_order(char c) { return c == '=' ? '<' : c; }

int64_t as_int(const PyValue& value, const char* what) {
  if (value.is(Kind::kInt)) return value.integer;
  if (value.is(Kind::kBool)) return value.boolean ? 1 : 0;
  MMKD_FAIL("numpy ", what, " must be an int, got ", value.describe());
}

bool as_flag(const PyValue& value, const char* what) { return as_int(value, what) != 0; }

const std::vector<PyRef>& tuple_items(const PyValue& value, const char* what) {
  MMKD_CHECK(value.is(Kind::kTuple) || value.is(Kind::kList), "numpy ", what,
             " must be a tuple, got ", value.describe());
  return value.items;
}

/// A shape tuple; bounds the element count so strides and byte sizes cannot overflow int64.
std::vector<int64_t> parse_shape(const PyValue& value, int64_t itemsize) {
  std::vector<int64_t> shape;
  int64_t bound = 1;
  const int64_t limit = (int64_t{1} << 62) / std::max<int64_t>(itemsize, 1);
  for (const PyRef& dim : tuple_items(value, "shape")) {
    const int64_t d = as_int(*dim, "shape entry");
    MMKD_CHECK(d >= 0, "numpy shape has a negative dimension ", d);
    MMKD_CHECK(d <= limit / bound, "numpy shape ", value.describe(), " is impossibly large");
    bound *= std::max<int64_t>(d, 1);
    shape.push_back(d);
  }
  MMKD_CHECK(shape.size() <= 32, "numpy shape has ", shape.size(), " dimensions (numpy allows 32)");
  return shape;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  NdArray array;
  array.shape = shape;
  return array.shape_string();
}

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<int64_t> element_strides(const std::vector<int64_t>& shape, bool fortran) {
  std::vector<int64_t> strides(shape.size());
  int64_t stride = 1;
  for (size_t k = 0; k < shape.size(); ++k) {
    const size_t i = fortran ? k : shape.size() - 1 - k;
    strides[i] = stride;
    stride *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

torch::ScalarType torch_type(const NumpyDtype& dtype) {
  const int64_t n = dtype.itemsize;
  switch (dtype.kind) {
    case 'f':
      if (n == 2) return torch::kHalf;
      if (n == 4) return torch::kFloat;
      if (n == 8) return torch::kDouble;
      break;
    case 'i':
      if (n == 1) return torch::kChar;
      if (n == 2) return torch::kShort;
      if (n == 4) return torch::kInt;
      if (n == 8) return torch::kLong;
      break;
    case 'u':
      if (n == 1) return torch::kByte;
      break;
    case 'b':
      if (n == 1) return torch::kBool;
      break;
    default:
      break;
  }
  MMKD_FAIL(
      "numpy dtype '", dtype.name(),
      "' is not supported (supported: float16/32/64, int8/16/32/64, uint8, bool, str, object)");
}

/// Big-endian payloads get a byte-swapped copy (numpy files are little-endian in practice).
torch::Tensor to_native_order(torch::Tensor bytes, const NumpyDtype& dtype,
                              AllocationBudget& budget) {
  if (dtype.byte_order != '>' || dtype.itemsize <= 1) return bytes;
  torch::Tensor copy = allocate_bytes(bytes.numel(), budget, "byte-swapped array");
  const uint8_t* src = bytes.data_ptr<uint8_t>();
  uint8_t* dst = copy.data_ptr<uint8_t>();
  const int64_t n = dtype.itemsize;
  for (int64_t at = 0; at + n <= bytes.numel(); at += n)
    for (int64_t b = 0; b < n; ++b) dst[at + b] = src[at + n - 1 - b];
  return copy;
}

torch::Tensor numeric_tensor(const NumpyDtype& dtype, const std::vector<int64_t>& shape,
                             bool fortran, torch::Tensor bytes, AllocationBudget& budget) {
  const torch::ScalarType type = torch_type(dtype);
  if (numel_of(shape) == 0) return torch::empty(shape, type);
  torch::Tensor buffer = to_native_order(std::move(bytes), dtype, budget);
  // bool is viewed as bytes first: torch requires 0/1 in bool storage, numpy files may differ.
  const torch::ScalarType view_type = type == torch::kBool ? torch::kByte : type;
  torch::Tensor keep_alive = buffer;
  torch::Tensor view = torch::from_blob(
      buffer.data_ptr(), shape, element_strides(shape, fortran), [keep_alive](void*) {},
      torch::TensorOptions().dtype(view_type));
  if (type != torch::kBool) return view;
  budget.charge(static_cast<uint64_t>(view.numel()), "bool array");
  return view.ne(0);
}

void append_utf8(std::string& out, uint32_t cp) {
  MMKD_CHECK(cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF),
             "numpy str array holds invalid code point ", cp);
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

/// One element of a 'U' array: UTF-32 code units, NUL-padded (numpy strips trailing NULs).
std::string decode_utf32(const uint8_t* p, int64_t chars, bool big_endian) {
  std::string out;
  int64_t used = chars;
  auto unit = [&](int64_t i) {
    const uint8_t* q = p + 4 * i;
    return big_endian ? (uint32_t{q[0]} << 24 | uint32_t{q[1]} << 16 | uint32_t{q[2]} << 8 | q[3])
                      : (uint32_t{q[3]} << 24 | uint32_t{q[2]} << 16 | uint32_t{q[1]} << 8 | q[0]);
  };
  while (used > 0 && unit(used - 1) == 0) --used;
  for (int64_t i = 0; i < used; ++i) append_utf8(out, unit(i));
  return out;
}

/// Storage order to C order for the string arrays of a Fortran-order array.
std::vector<std::string> fortran_to_c(std::vector<std::string> flat,
                                      const std::vector<int64_t>& shape) {
  const std::vector<int64_t> f_strides = element_strides(shape, true);
  std::vector<std::string> out(flat.size());
  std::vector<int64_t> index(shape.size(), 0);
  for (size_t c = 0; c < out.size(); ++c) {
    int64_t f = 0;
    for (size_t k = 0; k < shape.size(); ++k) f += index[k] * f_strides[k];
    out[c] = std::move(flat[static_cast<size_t>(f)]);
    for (size_t k = shape.size(); k-- > 0;) {
      if (++index[k] < shape[k]) break;
      index[k] = 0;
    }
  }
  return out;
}

std::vector<std::string> string_elements(const NumpyDtype& dtype, const std::vector<int64_t>& shape,
                                         bool fortran, const torch::Tensor& bytes) {
  const int64_t n = numel_of(shape);
  MMKD_CHECK(dtype.itemsize > 0 || n == 0, "numpy dtype '", dtype.name(), "' has no item size");
  MMKD_CHECK(dtype.kind != 'U' || dtype.itemsize % 4 == 0, "numpy str dtype with item size ",
             dtype.itemsize, " (not a multiple of 4)");
  std::vector<std::string> flat;
  flat.reserve(static_cast<size_t>(n));
  const uint8_t* p = n > 0 ? bytes.data_ptr<uint8_t>() : nullptr;
  for (int64_t i = 0; i < n; ++i, p += dtype.itemsize) {
    if (dtype.kind == 'U') {
      flat.push_back(decode_utf32(p, dtype.itemsize / 4, dtype.byte_order == '>'));
    } else {
      int64_t used = dtype.itemsize;
      while (used > 0 && p[used - 1] == 0) --used;
      flat.emplace_back(reinterpret_cast<const char*>(p), static_cast<size_t>(used));
    }
  }
  return fortran && shape.size() > 1 ? fortran_to_c(std::move(flat), shape) : flat;
}

/// Numeric and fixed-width string arrays from their raw bytes.
void fill_from_bytes(NdArray& array, const NumpyDtype& dtype, std::vector<int64_t> shape,
                     bool fortran, const PyValue& data, AllocationBudget& budget) {
  MMKD_CHECK(data.is(Kind::kBytes), "numpy array data must be bytes, got ", data.describe());
  const int64_t expected = numel_of(shape) * dtype.itemsize;
  MMKD_CHECK(data.bytes.numel() == expected, "numpy array ", dtype.name(), " of shape ",
             shape_text(shape), " needs ", expected, " bytes of data, the pickle has ",
             data.bytes.numel());
  array.dtype = dtype.name();
  array.strings.clear();
  array.tensor = torch::Tensor();
  if (dtype.kind == 'U' || dtype.kind == 'S') {
    budget.charge(static_cast<uint64_t>(expected) + 32 * static_cast<uint64_t>(numel_of(shape)),
                  "string array");
    array.strings = string_elements(dtype, shape, fortran, data.bytes);
  } else {
    array.tensor = numeric_tensor(dtype, shape, fortran, data.bytes, budget);
  }
  array.shape = std::move(shape);
}

}  // namespace

NumpyDtype parse_dtype_spec(const std::string& spec) {
  NumpyDtype dtype;
  size_t at = 0;
  if (at < spec.size() && is_order_char(spec[at])) dtype.byte_order = normalise_order(spec[at++]);
  MMKD_CHECK(at < spec.size(), "numpy dtype '", spec, "' is not understood");
  dtype.kind = spec[at] == '?' ? 'b' : spec[at];  // '?' is numpy's character code for bool
  ++at;
  MMKD_CHECK(std::string("fiubcOUSVMm").find(dtype.kind) != std::string::npos, "numpy dtype '",
             spec, "' is not understood");
  int64_t count = 0;
  bool has_digits = false;
  for (; at < spec.size(); ++at) {
    MMKD_CHECK(spec[at] >= '0' && spec[at] <= '9' && count < (int64_t{1} << 31), "numpy dtype '",
               spec, "' is not understood");
    count = count * 10 + (spec[at] - '0');
    has_digits = true;
  }
  if (!has_digits) count = dtype.kind == 'b' ? 1 : (dtype.kind == 'O' ? 8 : 0);
  dtype.itemsize = dtype.kind == 'U' ? 4 * count : count;
  if (dtype.byte_order == '|' && dtype.itemsize > 1 && dtype.kind != 'S' && dtype.kind != 'V' &&
      dtype.kind != 'O')
    dtype.byte_order = '<';
  return dtype;
}

void apply_dtype_state(NumpyDtype& dtype, const PyValue& state) {
  const auto& items = tuple_items(state, "dtype state");
  MMKD_CHECK(items.size() >= 2, "numpy dtype state has ", items.size(), " entries");
  const std::string order = items[1]->as_text();
  MMKD_CHECK(order.size() == 1 && is_order_char(order[0]), "numpy dtype byte order '", order,
             "' is not understood");
  dtype.byte_order = normalise_order(order[0]);
  if (items.size() < 6) return;
  // (version, order, subarray, names, fields, elsize, alignment, flags[, metadata])
  MMKD_CHECK(items[2]->is(Kind::kNone) && items[3]->is(Kind::kNone),
             "numpy structured or sub-array dtypes are not supported");
  const int64_t elsize = as_int(*items[5], "dtype item size");
  if ((dtype.kind == 'U' || dtype.kind == 'S' || dtype.kind == 'V') && elsize > 0) {
    MMKD_CHECK(elsize < (int64_t{1} << 31), "numpy dtype item size ", elsize,
               " is impossibly large");
    dtype.itemsize = elsize;
  }
}

void build_ndarray(NdArray& array, std::vector<PyRef>& object_items, const PyValue& state,
                   AllocationBudget& budget) {
  const auto& items = tuple_items(state, "array state");
  MMKD_CHECK(items.size() == 4 || items.size() == 5, "numpy array state has ", items.size(),
             " entries, expected (version, shape, dtype, is_fortran, data)");
  const size_t base = items.size() - 4;
  const PyValue& dtype_value = *items[base + 1];
  MMKD_CHECK(dtype_value.is(Kind::kDtype), "numpy array state names its dtype with a ",
             dtype_value.describe());
  const NumpyDtype& dtype = dtype_value.dtype;
  std::vector<int64_t> shape = parse_shape(*items[base], dtype.itemsize);
  const bool fortran = as_flag(*items[base + 2], "is_fortran flag");
  const PyValue& data = *items[base + 3];
  if (dtype.kind != 'O') {
    fill_from_bytes(array, dtype, std::move(shape), fortran, data, budget);
    return;
  }
  // Object arrays store a list of their elements in C order (numpy ignores is_fortran here).
  MMKD_CHECK(data.is(Kind::kList), "numpy object array data must be a list, got ", data.describe());
  MMKD_CHECK(static_cast<int64_t>(data.items.size()) == numel_of(shape),
             "numpy object array of shape ", shape_text(shape), " has ", data.items.size(),
             " elements");
  array.dtype = "object";
  array.shape = std::move(shape);
  array.tensor = torch::Tensor();
  array.strings.clear();
  object_items = data.items;
  const bool all_text = std::all_of(data.items.begin(), data.items.end(),
                                    [](const PyRef& item) { return item->is_text(); });
  if (!all_text) return;
  // Each element is copied; a memoised string referenced a million times (two bytes each in
  // the file) must not buy a million copies, so the copies count against the budget.
  for (const PyRef& item : data.items) {
    budget.charge(
        item->is(Kind::kStr) ? item->text.size() : static_cast<uint64_t>(item->bytes.numel()),
        "the strings of an object array");
    array.strings.push_back(item->as_text());
  }
}

void array_from_buffer(NdArray& array, const PyValue& buffer, const NumpyDtype& dtype,
                       const PyValue& shape, const std::string& order, AllocationBudget& budget) {
  MMKD_CHECK(order == "C" || order == "F", "numpy _frombuffer order '", order,
             "' is not 'C' or 'F'");
  MMKD_CHECK(dtype.kind != 'O', "numpy _frombuffer cannot hold an object array");
  fill_from_bytes(array, dtype, parse_shape(shape, dtype.itemsize), order == "F", buffer, budget);
}

void array_from_scalar(NdArray& array, const NumpyDtype& dtype, const PyValue& data,
                       AllocationBudget& budget) {
  fill_from_bytes(array, dtype, {}, false, data, budget);
}

torch::Tensor latin1_bytes(const std::string& utf8, AllocationBudget& budget) {
  // First pass validates and counts, so the output is allocated once at its exact size.
  int64_t count = 0;
  for (size_t i = 0; i < utf8.size(); ++count) {
    const auto lead = static_cast<uint8_t>(utf8[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    MMKD_CHECK((lead == 0xC2 || lead == 0xC3) && i + 1 < utf8.size() &&
                   (static_cast<uint8_t>(utf8[i + 1]) & 0xC0) == 0x80,
               "_codecs.encode(..., 'latin1') of text that is not latin-1 (byte ", i, ")");
    i += 2;
  }
  torch::Tensor out = allocate_bytes(static_cast<uint64_t>(count), budget, "latin-1 bytes");
  uint8_t* dst = count > 0 ? out.data_ptr<uint8_t>() : nullptr;
  for (size_t i = 0; i < utf8.size(); ++dst) {
    const auto lead = static_cast<uint8_t>(utf8[i]);
    if (lead < 0x80) {
      *dst = lead;
      ++i;
    } else {
      *dst =
          static_cast<uint8_t>(((lead & 0x03) << 6) | (static_cast<uint8_t>(utf8[i + 1]) & 0x3F));
      i += 2;
    }
  }
  return out;
}

}  // namespace mmkd::data::detail
