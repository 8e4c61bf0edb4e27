// A safe reader for Python pickles (protocols 2-5): plain data and numpy arrays, never code.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace mmkd::data {

struct PyValue;
/// Pickles share objects through their memo, so the value tree is a graph of shared nodes.
using PyRef = std::shared_ptr<PyValue>;

/// A numpy dtype as a pickle describes it: `numpy.dtype('f4')` plus the byte order of its state.
struct NumpyDtype {
  char kind = 'u';        ///< numpy kind: 'f', 'i', 'u', 'b', 'c', 'O', 'U', 'S', 'V', 'M', 'm'
  int64_t itemsize = 1;   ///< bytes per element ('U': 4 per character)
  char byte_order = '|';  ///< '<' little, '>' big, '|' not applicable, '=' native
  /// numpy's name: "float32", "int64", "bool", "<U7", "|S4", "object", ...
  std::string name() const;
};

/// A numpy array read from a pickle. Numeric arrays are tensors of the stored dtype; string
/// arrays ('U', 'S', and object arrays whose elements are all str/bytes) are lists of strings.
struct NdArray {
  std::string dtype = "uint8";  ///< numpy name of the stored dtype, e.g. "float64", "<U7", "object"
  std::vector<int64_t> shape;   ///< numpy shape
  /// Numeric arrays: the original dtype in native byte order, sharing the reader's buffer.
  /// A Fortran-order array is a non-contiguous view with the logical shape.
  torch::Tensor tensor;
  std::vector<std::string> strings;  ///< string arrays in C order, UTF-8 ('S': raw bytes)
  bool is_numeric() const { return tensor.defined(); }
  bool is_strings() const {
    return !tensor.defined() && strings.size() == static_cast<size_t>(numel());
  }
  int64_t numel() const;
  std::string shape_string() const;  ///< "[10,35]"
};

/// One node of an unpickled value. Only the fields of its kind are meaningful.
struct PyValue {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kStr,
    kBytes,
    kList,
    kTuple,
    kDict,
    kNdArray,
    kDtype,
    kGlobal,
    kTensor  ///< a torch tensor (or storage) of a torch.save archive
  };

  Kind kind = Kind::kNone;
  bool boolean = false;  ///< kBool
  int64_t integer = 0;   ///< kInt (pickled ints beyond 64 bits are refused)
  double real = 0.0;     ///< kFloat
  std::string text;      ///< kStr: UTF-8; kGlobal: "module.name"
  /// kBytes: uint8 [n], the reader's own buffer (arrays built from it share its storage).
  torch::Tensor bytes;
  std::vector<PyRef> items;                      ///< kList, kTuple; elements of object arrays
  std::vector<std::pair<PyRef, PyRef>> entries;  ///< kDict in insertion order
  NdArray array;                                 ///< kNdArray
  NumpyDtype dtype;                              ///< kDtype
  torch::Tensor tensor;                          ///< kTensor

  static PyRef make(Kind kind);
  static PyRef make_str(std::string text);
  static PyRef make_int(int64_t value);
  static PyRef make_float(double value);
  /// A numeric array holding `tensor` (no copy; C order as the tensor's logical layout).
  static PyRef make_array(torch::Tensor tensor);
  /// A string array of `shape` (numel(shape) == strings.size()).
  static PyRef make_string_array(std::vector<std::string> strings, std::vector<int64_t> shape);

  bool is(Kind k) const { return kind == k; }
  bool is_text() const { return kind == Kind::kStr || kind == Kind::kBytes; }
  /// kStr's text or kBytes' raw bytes as a string (copies; meant for keys and short values).
  std::string as_text() const;
  /// "dict", "ndarray", "str", ...
  const char* kind_name() const;
  /// For errors: "ndarray float64 [10,35]", "list of 3", "str 'abc'".
  std::string describe() const;

  /// Dict lookup by a str (or bytes) key; nullptr when absent. A later binding wins, as in Python.
  PyValue* find(const std::string& key) const;
  /// The str/bytes keys of a dict in order, for error messages.
  std::vector<std::string> text_keys() const;
  /// Appends `key -> value` to a dict.
  void set(const std::string& key, PyRef value);
};

/// Bounds that protect the reader from hostile input.
struct PickleLimits {
  int max_nesting = 256;  ///< deepest container nesting accepted (MOSEI files need about 5)
  /// Bytes the reader may allocate for payloads and conversions, as a multiple of the input size
  /// (plus 1 MiB): a length field can never make it allocate more than the file holds.
  double payload_factor = 2.0;
  /// Bytes of decoded values (one node is about 250 bytes, and a one-byte opcode such as None
  /// makes one) as a multiple of the input size, plus 16 MiB: a file of millions of tiny
  /// opcodes must not cost hundreds of times its size in memory. Real MOSEI files, whose bulk
  /// is array payloads, use well under 1x.
  double value_factor = 64.0;
};

/// Parses the pickle file at `path`, streaming it; big byte payloads are read straight into the
/// buffers that become the arrays' storage. Throws mmkd::Error naming the file and the problem
/// ("no such file", "truncated pickle (ended at byte N while reading X)", a refused global, ...).
PyRef read_pickle_file(const std::string& path, const PickleLimits& limits = {});

/// Parses a pickle held in memory (fuzzing, tests); `name` prefixes error messages.
PyRef read_pickle_memory(const void* data, size_t size, const std::string& name = "<memory>",
                         const PickleLimits& limits = {});

/// The globals a pickle may refer to: numpy array reconstruction and the helpers it needs.
const std::vector<std::string>& pickle_allowed_globals();

/// Loads the storage a torch.save pickle names by persistent id ('storage', torch.FloatStorage,
/// key, location, numel): a flat tensor of `dtype` with at least `numel` elements. Called once per
/// reference; the caller caches by key so that views share their storage.
using StorageLoader =
    std::function<torch::Tensor(const std::string& key, torch::ScalarType dtype, int64_t numel)>;

/// Parses the data.pkl of a torch.save archive of tensors (a state dict): plain data, ordered
/// dicts and tensors rebuilt from `storages`. Only the globals a tensor state dict needs
/// (torch_pickle_allowed_globals()) are accepted; any other is refused, naming it, before
/// anything is called. Errors are prefixed with `name`.
PyRef read_torch_pickle_memory(const void* data, size_t size, const std::string& name,
                               const StorageLoader& storages, const PickleLimits& limits = {});

/// collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter and the typed
/// storage classes (torch.FloatStorage, ...).
const std::vector<std::string>& torch_pickle_allowed_globals();

}  // namespace mmkd::data
