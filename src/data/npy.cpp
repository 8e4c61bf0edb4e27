#include "mmkd/data/npy.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "mmkd/core/error.h"
#include "mmkd/core/input_file.h"

namespace mmkd::data {

namespace {

struct NpyHeader {
  std::string descr;
  bool fortran = false;
  std::vector<int64_t> shape;
};

/// numpy writes "(16, 35)", "(16,)" or "()": non-negative integers separated by commas.
/// Anything else (a sign, a missing comma, a number beyond int64) is a corrupt header.
std::vector<int64_t> parse_shape_text(const std::string& text, const std::string& path) {
  std::vector<int64_t> shape;
  std::string item;
  std::stringstream in(text);
  while (std::getline(in, item, ',')) {
    const auto first = item.find_first_not_of(" \t");
    if (first == std::string::npos) {
      MMKD_CHECK(in.eof() && !shape.empty(), path, ": .npy header has a malformed shape (", text,
                 ")");
      break;  // the trailing comma of a 1-tuple
    }
    const std::string digits = item.substr(first, item.find_last_not_of(" \t") - first + 1);
    MMKD_CHECK(digits.size() <= 18 && std::all_of(digits.begin(), digits.end(), ::isdigit), path,
               ": .npy header has a malformed shape (", text, "); expected non-negative integers");
    shape.push_back(std::stoll(digits));
  }
  return shape;
}

NpyHeader parse_header(const std::string& text, const std::string& path) {
  NpyHeader header;
  std::smatch match;
  MMKD_CHECK(std::regex_search(text, match, std::regex("'descr':\\s*'([^']+)'")), path,
             ": .npy header has no 'descr'");
  header.descr = match[1];
  MMKD_CHECK(std::regex_search(text, match, std::regex("'fortran_order':\\s*(True|False)")), path,
             ": .npy header has no 'fortran_order'");
  header.fortran = match[1] == "True";
  MMKD_CHECK(std::regex_search(text, match, std::regex("'shape':\\s*\\(([^)]*)\\)")), path,
             ": .npy header has no 'shape'");
  header.shape = parse_shape_text(match[1], path);
  return header;
}

torch::ScalarType scalar_type(const std::string& code, const std::string& path) {
  static const std::map<std::string, torch::ScalarType> types = {
      {"f2", torch::kHalf}, {"f4", torch::kFloat}, {"f8", torch::kDouble},
      {"i1", torch::kChar}, {"i2", torch::kShort}, {"i4", torch::kInt},
      {"i8", torch::kLong}, {"u1", torch::kByte},  {"b1", torch::kBool}};
  const auto it = types.find(code);
  MMKD_CHECK(it != types.end(), path, ": unsupported .npy dtype '", code,
             "' (expected a numeric array: f2/f4/f8, i1..i8, u1, b1)");
  return it->second;
}

/// Before allocating: a header may claim any shape, the data can only be what the file holds.
void check_data_fits(std::istream& in, const std::vector<int64_t>& shape, size_t element_size,
                     const std::string& path) {
  const std::streamoff here = in.tellg();
  in.seekg(0, std::ios::end);
  const auto remaining = static_cast<uint64_t>(in.tellg() - here);
  in.seekg(here);
  uint64_t bytes = element_size;
  for (int64_t d : shape) {
    const auto n = static_cast<uint64_t>(d);
    MMKD_CHECK(n == 0 || bytes <= remaining / n, path, ": truncated .npy data (its header claims ",
               "shape ", torch::IntArrayRef(shape), ", more than the ", remaining,
               " bytes of data the file holds)");
    bytes *= n;
  }
}

}  // namespace

torch::Tensor read_npy(const std::string& path) {
  require_regular_file(path, "a .npy file");
  std::ifstream in(path, std::ios::binary);
  MMKD_CHECK(in, path, ": no such file");
  char magic[8];
  in.read(magic, 8);
  MMKD_CHECK(in && std::memcmp(magic, "\x93NUMPY", 6) == 0, path, ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(magic[6]);
  uint32_t header_len = 0;
  if (major == 1) {
    unsigned char b[2];
    in.read(reinterpret_cast<char*>(b), 2);
    header_len = b[0] | (b[1] << 8);
  } else {
    unsigned char b[4];
    in.read(reinterpret_cast<char*>(b), 4);
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  }
  MMKD_CHECK(in && header_len < (1u << 20), path, ": truncated or corrupt .npy header");
  std::string text(header_len, '\0');
  in.read(text.data(), header_len);
  MMKD_CHECK(in, path, ": truncated .npy header");
  const NpyHeader header = parse_header(text, path);
  MMKD_CHECK(header.descr.size() >= 3, path, ": bad dtype '", header.descr, "'");
  const char order = header.descr[0];
  MMKD_CHECK(order == '<' || order == '>' || order == '|' || order == '=', path,
             ": bad byte order in dtype '", header.descr, "'");
  const torch::ScalarType type = scalar_type(header.descr.substr(1), path);

  std::vector<int64_t> storage_shape = header.shape;
  if (header.fortran) std::reverse(storage_shape.begin(), storage_shape.end());
  check_data_fits(in, header.shape, torch::elementSize(type), path);
  torch::Tensor tensor = torch::empty(storage_shape, torch::TensorOptions().dtype(type));
  const auto bytes = static_cast<std::streamsize>(tensor.numel() * tensor.element_size());
  in.read(static_cast<char*>(tensor.data_ptr()), bytes);
  MMKD_CHECK(in.gcount() == bytes, path, ": truncated .npy data (expected ", bytes,
             " bytes, found ", in.gcount(), ")");
  if (order == '>' && tensor.element_size() > 1) {
    auto* data = static_cast<unsigned char*>(tensor.data_ptr());
    const int64_t size = tensor.element_size();
    for (int64_t i = 0; i < tensor.numel(); ++i)
      std::reverse(data + i * size, data + (i + 1) * size);
  }
  if (header.fortran) {
    std::vector<int64_t> dims(storage_shape.size());
    for (size_t i = 0; i < dims.size(); ++i) dims[i] = static_cast<int64_t>(dims.size() - 1 - i);
    tensor = tensor.permute(dims).contiguous();
  }
  return tensor;
}

}  // namespace mmkd::data
