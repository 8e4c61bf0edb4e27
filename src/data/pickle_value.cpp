// The value tree produced by the pickle reader and consumed by the pickle writer.
#include <sstream>

#include "mmkd/core/error.h"
#include "mmkd/data/pickle.h"

namespace mmkd::data {

std::string NumpyDtype::name() const {
  switch (kind) {
    case 'f':
      return "float" + std::to_string(itemsize * 8);
    case 'i':
      return "int" + std::to_string(itemsize * 8);
    case 'u':
      return "uint" + std::to_string(itemsize * 8);
    case 'c':
      return "complex" + std::to_string(itemsize * 8);
    case 'b':
      return "bool";
    case 'O':
      return "object";
    case 'U':
      return std::string(1, byte_order == '>' ? '>' : '<') + "U" + std::to_string(itemsize / 4);
    case 'S':
      return "|S" + std::to_string(itemsize);
    default:
      return std::string(1, kind) + std::to_string(itemsize);
  }
}

int64_t NdArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string NdArray::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

PyRef PyValue::make(Kind kind) {
  auto value = std::make_shared<PyValue>();
  value->kind = kind;
  return value;
}

PyRef PyValue::make_str(std::string text) {
  auto value = make(Kind::kStr);
  value->text = std::move(text);
  return value;
}

PyRef PyValue::make_int(int64_t v) {
  auto value = make(Kind::kInt);
  value->integer = v;
  return value;
}

PyRef PyValue::make_float(double v) {
  auto value = make(Kind::kFloat);
  value->real = v;
  return value;
}

namespace {
std::string dtype_name_of(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat:
      return "float32";
    case torch::kDouble:
      return "float64";
    case torch::kHalf:
      return "float16";
    case torch::kChar:
      return "int8";
    case torch::kShort:
      return "int16";
    case torch::kInt:
      return "int32";
    case torch::kLong:
      return "int64";
    case torch::kByte:
      return "uint8";
    case torch::kBool:
      return "bool";
    default:
      MMKD_FAIL("tensor dtype ", c10::toString(type), " has no numpy equivalent mmkd writes");
  }
}
}  // namespace

PyRef PyValue::make_array(torch::Tensor tensor) {
  auto value = make(Kind::kNdArray);
  value->array.dtype = dtype_name_of(tensor.scalar_type());
  value->array.shape = tensor.sizes().vec();
  value->array.tensor = std::move(tensor);
  return value;
}

PyRef PyValue::make_string_array(std::vector<std::string> strings, std::vector<int64_t> shape) {
  auto value = make(Kind::kNdArray);
  value->array.dtype = "object";
  value->array.shape = std::move(shape);
  MMKD_CHECK(value->array.numel() == static_cast<int64_t>(strings.size()), "string array of ",
             strings.size(), " elements does not fill shape ", value->array.shape_string());
  value->array.strings = std::move(strings);
  return value;
}

std::string PyValue::as_text() const {
  if (kind == Kind::kStr) return text;
  if (kind == Kind::kBytes && bytes.numel() == 0) return {};
  if (kind == Kind::kBytes)
    return std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), bytes.numel());
  MMKD_FAIL("expected str or bytes, got ", describe());
}

const char* PyValue::kind_name() const {
  switch (kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kStr:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kList:
      return "list";
    case Kind::kTuple:
      return "tuple";
    case Kind::kDict:
      return "dict";
    case Kind::kNdArray:
      return "ndarray";
    case Kind::kDtype:
      return "dtype";
    case Kind::kGlobal:
      return "global";
    case Kind::kTensor:
      return "tensor";
  }
  return "?";
}

std::string PyValue::describe() const {
  std::ostringstream out;
  out << kind_name();
  switch (kind) {
    case Kind::kNdArray:
      out << " " << array.dtype << " " << array.shape_string();
      break;
    case Kind::kList:
    case Kind::kTuple:
      out << " of " << items.size();
      break;
    case Kind::kDict:
      out << " of " << entries.size();
      break;
    case Kind::kGlobal:
      out << " '" << text << "'";
      break;
    case Kind::kDtype:
      out << " " << dtype.name();
      break;
    case Kind::kTensor:
      out << " " << c10::toString(tensor.scalar_type()) << " " << tensor.sizes();
      break;
    case Kind::kInt:
      out << " " << integer;
      break;
    case Kind::kFloat:
      out << " " << real;
      break;
    case Kind::kStr:
      out << " '" << (text.size() > 40 ? text.substr(0, 40) + "..." : text) << "'";
      break;
    default:
      break;
  }
  return out.str();
}

PyValue* PyValue::find(const std::string& key) const {
  if (kind != Kind::kDict) return nullptr;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it)
    if (it->first->is_text() && it->first->as_text() == key) return it->second.get();
  return nullptr;
}

std::vector<std::string> PyValue::text_keys() const {
  std::vector<std::string> keys;
  for (const auto& [key, value] : entries)
    if (key->is_text()) keys.push_back(key->as_text());
  return keys;
}

void PyValue::set(const std::string& key, PyRef value) {
  MMKD_CHECK(kind == Kind::kDict, "set('", key, "') on a ", kind_name(), ", not a dict");
  entries.emplace_back(make_str(key), std::move(value));
}

}  // namespace mmkd::data
