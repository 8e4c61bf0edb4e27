// The pickle opcode machine: a stack, marks and a memo, with calls limited to a whitelist.
#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "mmkd/core/error.h"
#include "mmkd/data/pickle.h"
#include "pickle_numpy.h"
#include "pickle_source.h"

namespace mmkd::data {

using Kind = PyValue::Kind;
using detail::AllocationBudget;
using detail::ByteSource;

const std::vector<std::string>& pickle_allowed_globals() {
  static const std::vector<std::string> allowed = {"numpy.core.multiarray._reconstruct",
                                                   "numpy._core.multiarray._reconstruct",
                                                   "numpy.ndarray",
                                                   "numpy.dtype",
                                                   "numpy.core.numeric._frombuffer",
                                                   "numpy._core.numeric._frombuffer",
                                                   "numpy.core.multiarray.scalar",
                                                   "numpy._core.multiarray.scalar",
                                                   "_codecs.encode",
                                                   "builtins.bytes",
                                                   "__builtin__.bytes"};
  return allowed;
}

namespace {

/// The typed storage classes a torch.save pickle names, with their element types.
const std::vector<std::pair<std::string, torch::ScalarType>>& torch_storage_types() {
  static const std::vector<std::pair<std::string, torch::ScalarType>> types = {
      {"torch.FloatStorage", torch::kFloat}, {"torch.DoubleStorage", torch::kDouble},
      {"torch.HalfStorage", torch::kHalf},   {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kLong},   {"torch.IntStorage", torch::kInt},
      {"torch.ShortStorage", torch::kShort}, {"torch.CharStorage", torch::kChar},
      {"torch.ByteStorage", torch::kByte},   {"torch.BoolStorage", torch::kBool}};
  return types;
}

}  // namespace

const std::vector<std::string>& torch_pickle_allowed_globals() {
  static const std::vector<std::string> allowed = [] {
    std::vector<std::string> names = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                      "torch._utils._rebuild_parameter"};
    for (const auto& [name, type] : torch_storage_types()) names.push_back(name);
    return names;
  }();
  return allowed;
}

namespace {

/// Which whitelisted callable a global is; everything else never gets this far.
enum class Callable {
  kReconstruct,
  kNdarray,
  kDtype,
  kFromBuffer,
  kScalar,
  kEncode,
  kBytes,
  kOrderedDict,
  kRebuildTensor,
  kRebuildParameter,
  kStorageType
};

Callable callable_of(const std::string& name) {
  if (name == "collections.OrderedDict") return Callable::kOrderedDict;
  if (name == "torch._utils._rebuild_tensor_v2") return Callable::kRebuildTensor;
  if (name == "torch._utils._rebuild_parameter") return Callable::kRebuildParameter;
  if (name.rfind("torch.", 0) == 0) return Callable::kStorageType;
  if (name.rfind("numpy.", 0) == 0) {
    const std::string tail = name.substr(name.find_last_of('.') + 1);
    if (tail == "_reconstruct") return Callable::kReconstruct;
    if (tail == "ndarray") return Callable::kNdarray;
    if (tail == "dtype") return Callable::kDtype;
    if (tail == "_frombuffer") return Callable::kFromBuffer;
    if (tail == "scalar") return Callable::kScalar;
  }
  if (name == "_codecs.encode") return Callable::kEncode;
  return Callable::kBytes;
}

/// What one decoded value costs: the node and its shared_ptr control block.
constexpr uint64_t kValueBytes = sizeof(PyValue) + 16;

class Unpickler {
 public:
  /// `storages` set: a torch.save pickle (torch globals, persistent ids); else numpy's globals.
  Unpickler(ByteSource& in, const PickleLimits& limits, const StorageLoader* storages)
      : in_(in),
        limits_(limits),
        storages_(storages),
        budget_(static_cast<uint64_t>(limits.payload_factor * static_cast<double>(in.size())) +
                (1u << 20)),
        values_(static_cast<uint64_t>(limits.value_factor * static_cast<double>(in.size())) +
                (16u << 20)) {}

  PyRef run();

 private:
  bool step();  // executes one opcode; false at STOP
  void dispatch(uint8_t op);

  // Stack helpers; each names the opcode in its error.
  PyRef pop();
  PyRef& top();
  std::vector<PyRef> pop_to_mark();
  void push(PyRef value) {
    // Only a node nobody else holds is new; a memo reference or DUP shares an existing one.
    if (value.use_count() == 1) count_value();
    stack_.push_back(std::move(value));
  }
  void count_value() { values_.charge(kValueBytes, "decoded values"); }
  PyRef container(Kind kind);

  // Operand readers.
  uint64_t read_uint(int bytes, const char* what);
  std::string read_text(uint64_t n, const char* what);
  PyRef read_bytes(uint64_t n, const char* what);
  std::string read_line(const char* what);
  uint64_t read_decimal(const char* what);

  // Opcode families.
  void push_long(int length_bytes);
  void push_global(const std::string& module, const std::string& name);
  void memo_put(uint64_t index);
  void memo_get(uint64_t index);
  void append_items(std::vector<PyRef> values);
  void set_items(std::vector<PyRef> values);
  void make_tuple(size_t count);
  void reduce();
  void build();
  void persistent_load();
  PyRef call(Callable callable, const std::string& name, const std::vector<PyRef>& args);
  PyRef rebuild_tensor(const std::string& name, const std::vector<PyRef>& args);

  std::unordered_set<const PyValue*> check_result(const PyValue& root) const;
  void break_references(const std::unordered_set<const PyValue*>& keep = {});

  ByteSource& in_;
  PickleLimits limits_;
  const StorageLoader* storages_;
  AllocationBudget budget_;
  AllocationBudget values_;  // the value tree itself (PickleLimits::value_factor)
  std::vector<PyRef> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PyRef> memo_;
  /// Every node that can hold other nodes. On failure their children are cleared, which frees
  /// self-referencing graphs and deep chains without recursion.
  std::vector<PyRef> containers_;
  uint8_t op_ = 0;
  uint64_t op_at_ = 0;
};

// ---- stack --------------------------------------------------------------------------------

PyRef Unpickler::pop() {
  MMKD_CHECK(stack_.size() > (marks_.empty() ? 0 : marks_.back()), "opcode ", int(op_),
             " pops an empty stack");
  PyRef value = std::move(stack_.back());
  stack_.pop_back();
  return value;
}

PyRef& Unpickler::top() {
  MMKD_CHECK(stack_.size() > (marks_.empty() ? 0 : marks_.back()), "opcode ", int(op_),
             " needs a value on the stack");
  return stack_.back();
}

std::vector<PyRef> Unpickler::pop_to_mark() {
  MMKD_CHECK(!marks_.empty(), "opcode ", int(op_), " needs a MARK that is not there");
  const size_t mark = marks_.back();
  marks_.pop_back();
  std::vector<PyRef> values(
      std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(mark)),
      std::make_move_iterator(stack_.end()));
  stack_.resize(mark);
  return values;
}

PyRef Unpickler::container(Kind kind) {
  count_value();
  PyRef value = PyValue::make(kind);
  containers_.push_back(value);
  return value;
}

// ---- operands -----------------------------------------------------------------------------

uint64_t Unpickler::read_uint(int bytes, const char* what) {
  uint8_t raw[8] = {};
  in_.read(raw, static_cast<uint64_t>(bytes), what);
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | raw[i];
  return value;
}

std::string Unpickler::read_text(uint64_t n, const char* what) {
  in_.require(n, what);  // before allocating: a length field cannot exceed what remains
  budget_.charge(n, what);
  std::string text(static_cast<size_t>(n), '\0');
  in_.read(text.data(), n, what);
  return text;
}

PyRef Unpickler::read_bytes(uint64_t n, const char* what) {
  in_.require(n, what);
  PyRef value = PyValue::make(Kind::kBytes);
  // Read straight into the buffer that an array built from these bytes will use as storage.
  value->bytes = detail::allocate_bytes(n, budget_, what);
  if (n > 0) in_.read(value->bytes.data_ptr<uint8_t>(), n, what);
  return value;
}

std::string Unpickler::read_line(const char* what) {
  std::string line;
  for (char c = static_cast<char>(in_.byte(what)); c != '\n';
       c = static_cast<char>(in_.byte(what))) {
    MMKD_CHECK(line.size() < 4096, what, " is longer than 4096 bytes");
    line += c;
  }
  return line;
}

uint64_t Unpickler::read_decimal(const char* what) {
  const std::string line = read_line(what);
  MMKD_CHECK(!line.empty() && line.size() <= 19 &&
                 std::all_of(line.begin(), line.end(), [](char c) { return c >= '0' && c <= '9'; }),
             what, " '", line, "' is not a decimal number");
  return std::stoull(line);
}

// ---- opcode families ----------------------------------------------------------------------

void Unpickler::push_long(int length_bytes) {
  const uint64_t n = read_uint(length_bytes, "long length");
  MMKD_CHECK(n <= 8, "integer of ", n, " bytes does not fit 64 bits");
  uint8_t raw[8] = {};
  in_.read(raw, n, "long");
  uint64_t bits = 0;
  for (uint64_t i = n; i-- > 0;) bits = (bits << 8) | raw[i];
  if (n > 0 && n < 8 && (raw[n - 1] & 0x80)) bits |= ~uint64_t{0} << (8 * n);  // sign-extend
  push(PyValue::make_int(static_cast<int64_t>(bits)));
}

void Unpickler::push_global(const std::string& module, const std::string& name) {
  const std::string full = module + "." + name;
  const auto& allowed = storages_ ? torch_pickle_allowed_globals() : pickle_allowed_globals();
  MMKD_CHECK(std::find(allowed.begin(), allowed.end(), full) != allowed.end(),
             "pickle refers to global '", full, "', which mmkd does not load (only ",
             storages_ ? "the tensors and ordered dicts of a state dict are"
                       : "numpy array reconstruction is",
             " allowed)");
  PyRef value = PyValue::make(Kind::kGlobal);
  value->text = full;
  push(std::move(value));
}

void Unpickler::memo_put(uint64_t index) {
  // A one-byte MEMOIZE adds a hash-map entry: counted like a value, so a file of them is bounded.
  const auto [entry, added] = memo_.try_emplace(index);
  if (added) count_value();
  entry->second = top();
}

void Unpickler::memo_get(uint64_t index) {
  const auto it = memo_.find(index);
  MMKD_CHECK(it != memo_.end(), "memo entry ", index, " is read before it is written");
  push(it->second);
}

void Unpickler::append_items(std::vector<PyRef> values) {
  PyRef& list = top();
  MMKD_CHECK(list->is(Kind::kList), "APPEND(S) to a ", list->describe(), ", expected a list");
  for (PyRef& value : values) list->items.push_back(std::move(value));
}

void Unpickler::set_items(std::vector<PyRef> values) {
  MMKD_CHECK(values.size() % 2 == 0, "SETITEMS with an odd number (", values.size(),
             ") of keys and values");
  PyRef& dict = top();
  MMKD_CHECK(dict->is(Kind::kDict), "SETITEM(S) on a ", dict->describe(), ", expected a dict");
  for (size_t i = 0; i < values.size(); i += 2)
    dict->entries.emplace_back(std::move(values[i]), std::move(values[i + 1]));
}

void Unpickler::make_tuple(size_t count) {
  PyRef tuple = container(Kind::kTuple);
  tuple->items.resize(count);
  for (size_t i = count; i-- > 0;) tuple->items[i] = pop();
  push(std::move(tuple));
}

void Unpickler::reduce() {
  PyRef args = pop();
  PyRef callable = pop();
  MMKD_CHECK(callable->is(Kind::kGlobal), "REDUCE calls a ", callable->describe(),
             ", not a global");
  MMKD_CHECK(args->is(Kind::kTuple), "REDUCE arguments are a ", args->describe(), ", not a tuple");
  push(call(callable_of(callable->text), callable->text, args->items));
}

PyRef Unpickler::call(Callable callable, const std::string& name, const std::vector<PyRef>& args) {
  auto arity = [&](size_t n) {
    MMKD_CHECK(args.size() == n, name, "() called with ", args.size(), " arguments, expected ", n);
  };
  auto dtype_arg = [&](const PyRef& arg) -> const NumpyDtype& {
    MMKD_CHECK(arg->is(Kind::kDtype), name, "() expects a numpy dtype, got ", arg->describe());
    return arg->dtype;
  };
  switch (callable) {
    case Callable::kReconstruct: {  // _reconstruct(ndarray, shape, typecode): an empty array
      arity(3);
      MMKD_CHECK(args[0]->is(Kind::kGlobal) && callable_of(args[0]->text) == Callable::kNdarray,
                 name, "() may only build numpy.ndarray, got ", args[0]->describe());
      PyRef array = container(Kind::kNdArray);
      array->array.tensor = torch::empty({0}, torch::kUInt8);
      array->array.shape = {0};
      return array;
    }
    case Callable::kDtype: {  // dtype(spec, align, copy)
      MMKD_CHECK(!args.empty() && args.size() <= 3, name, "() called with ", args.size(),
                 " arguments");
      PyRef dtype = PyValue::make(Kind::kDtype);
      dtype->dtype = detail::parse_dtype_spec(args[0]->as_text());
      return dtype;
    }
    case Callable::kFromBuffer: {  // _frombuffer(buffer, dtype, shape, order)
      arity(4);
      PyRef array = container(Kind::kNdArray);
      detail::array_from_buffer(array->array, *args[0], dtype_arg(args[1]), *args[2],
                                args[3]->as_text(), budget_);
      return array;
    }
    case Callable::kScalar: {  // scalar(dtype, bytes) or scalar(dtype('O'), object)
      MMKD_CHECK(args.size() == 2, name, "() called with ", args.size(), " arguments, expected 2");
      if (dtype_arg(args[0]).kind == 'O') return args[1];
      PyRef array = container(Kind::kNdArray);
      detail::array_from_scalar(array->array, dtype_arg(args[0]), *args[1], budget_);
      return array;
    }
    case Callable::kEncode: {  // _codecs.encode(text, 'latin1'): protocol 2's bytes
      arity(2);
      const std::string codec = args[1]->as_text();
      MMKD_CHECK(codec == "latin1" || codec == "latin-1", name, "() with codec '", codec,
                 "' (only latin1 is used by pickle)");
      MMKD_CHECK(args[0]->is(Kind::kStr), name, "() of a ", args[0]->describe());
      PyRef bytes = PyValue::make(Kind::kBytes);
      bytes->bytes = detail::latin1_bytes(args[0]->text, budget_);
      return bytes;
    }
    case Callable::kBytes: {  // bytes(): protocol 2's empty bytes
      arity(0);
      PyRef bytes = PyValue::make(Kind::kBytes);
      bytes->bytes = torch::empty({0}, torch::kUInt8);
      return bytes;
    }
    case Callable::kOrderedDict:  // OrderedDict(): filled by SETITEMS
      arity(0);
      return container(Kind::kDict);
    case Callable::kRebuildTensor:
      return rebuild_tensor(name, args);
    case Callable::kRebuildParameter: {  // _rebuild_parameter(data, requires_grad, hooks)
      arity(3);
      MMKD_CHECK(args[0]->is(Kind::kTensor), name, "() of a ", args[0]->describe());
      return args[0];
    }
    case Callable::kNdarray:
    case Callable::kStorageType:
      break;
  }
  MMKD_FAIL(name, " cannot be called directly");
}

/// _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]): a view of
/// the storage, every element of which must lie inside it.
PyRef Unpickler::rebuild_tensor(const std::string& name, const std::vector<PyRef>& args) {
  MMKD_CHECK(args.size() == 6 || args.size() == 7, name, "() called with ", args.size(),
             " arguments, expected 6 or 7");
  MMKD_CHECK(args[0]->is(Kind::kTensor), name, "() needs a storage, got ", args[0]->describe());
  MMKD_CHECK(args[1]->is(Kind::kInt) && args[1]->integer >= 0, name,
             "(): storage offset must be a non-negative int, got ", args[1]->describe());
  const auto int_list = [&](const PyValue& value, const char* what) {
    MMKD_CHECK(value.is(Kind::kTuple) && value.items.size() <= 64, name, "(): ", what,
               " must be a tuple of at most 64 ints, got ", value.describe());
    std::vector<int64_t> ints;
    for (const auto& item : value.items) {
      MMKD_CHECK(item->is(Kind::kInt) && item->integer >= 0 && item->integer < (int64_t{1} << 40),
                 name, "(): ", what, " holds ", item->describe(), ", expected 0 <= n < 2^40");
      ints.push_back(item->integer);
    }
    return ints;
  };
  const auto sizes = int_list(*args[2], "size");
  const auto strides = int_list(*args[3], "stride");
  MMKD_CHECK(sizes.size() == strides.size(), name, "(): ", sizes.size(), " sizes but ",
             strides.size(), " strides");
  const torch::Tensor& storage = args[0]->tensor;
  const int64_t offset = args[1]->integer;
  // The last element a view touches; an empty view touches none.
  int64_t extent = offset;
  bool empty = false;
  for (size_t i = 0; i < sizes.size(); ++i) {
    empty = empty || sizes[i] == 0;
    if (sizes[i] > 0) extent += (sizes[i] - 1) * strides[i];
  }
  MMKD_CHECK(empty || extent < storage.numel(), name, "(): a tensor of size ", args[2]->describe(),
             " at offset ", offset, " reaches element ", extent, " of a storage of ",
             storage.numel());
  PyRef tensor = PyValue::make(Kind::kTensor);
  tensor->tensor =
      empty ? torch::empty(sizes, storage.options()) : storage.as_strided(sizes, strides, offset);
  return tensor;
}

/// BINPERSID with ('storage', torch.XStorage, key, location, numel): a storage of the archive.
void Unpickler::persistent_load() {
  MMKD_CHECK(storages_ != nullptr, "persistent ids are not supported");
  PyRef pid = pop();
  MMKD_CHECK(pid->is(Kind::kTuple) && pid->items.size() == 5 && pid->items[0]->is(Kind::kStr) &&
                 pid->items[0]->text == "storage",
             "persistent id ", pid->describe(),
             " is not a storage reference ('storage', type, key, location, numel)");
  const auto& items = pid->items;
  MMKD_CHECK(items[1]->is(Kind::kGlobal) && callable_of(items[1]->text) == Callable::kStorageType,
             "persistent id: storage type ", items[1]->describe(), " is not a typed storage class");
  MMKD_CHECK(items[2]->is(Kind::kStr) && !items[2]->text.empty() && items[2]->text.size() <= 64,
             "persistent id: storage key ", items[2]->describe(), " is not a short str");
  MMKD_CHECK(items[4]->is(Kind::kInt) && items[4]->integer >= 0, "persistent id: numel ",
             items[4]->describe(), " is not a non-negative int");
  torch::ScalarType dtype = torch::kFloat;
  for (const auto& [type_name, type] : torch_storage_types())
    if (type_name == items[1]->text) dtype = type;
  PyRef storage = PyValue::make(Kind::kTensor);
  storage->tensor = (*storages_)(items[2]->text, dtype, items[4]->integer);
  MMKD_CHECK(storage->tensor.defined() && storage->tensor.dim() == 1 &&
                 storage->tensor.scalar_type() == dtype &&
                 storage->tensor.numel() >= items[4]->integer,
             "persistent id: storage '", items[2]->text, "' was not loaded as ", items[4]->integer,
             " elements of ", c10::toString(dtype));
  push(std::move(storage));
}

void Unpickler::build() {
  PyRef state = pop();
  PyRef& target = top();
  if (target->is(Kind::kDtype)) {
    detail::apply_dtype_state(target->dtype, *state);
  } else if (target->is(Kind::kNdArray)) {
    detail::build_ndarray(target->array, target->items, *state, budget_);
  } else if (storages_ != nullptr && target->is(Kind::kDict) && state->is(Kind::kDict)) {
    // A state dict's OrderedDict carries `_metadata` (module versions) as instance attributes;
    // they are not needed to rebuild tensors.
    for (const auto& [key, value] : state->entries) {
      MMKD_CHECK(key->is(Kind::kStr) && key->text == "_metadata", "BUILD sets attribute ",
                 key->describe(), " on a dict (only a state dict's _metadata is accepted)");
    }
  } else {
    MMKD_FAIL("BUILD on a ", target->describe(), " (only numpy arrays and dtypes are rebuilt)");
  }
}

// ---- the machine --------------------------------------------------------------------------

bool Unpickler::step() {
  op_at_ = in_.position();
  op_ = in_.byte("an opcode (missing STOP)");
  if (op_ == '.') return false;
  dispatch(op_);
  return true;
}

void Unpickler::dispatch(uint8_t op) {
  switch (op) {
    case 0x80: {  // PROTO
      const auto protocol = static_cast<int>(read_uint(1, "protocol"));
      MMKD_CHECK(protocol >= 2 && protocol <= 5, "pickle protocol ", protocol,
                 " is not supported (protocols 2-5 are)");
      break;
    }
    case 0x95: {  // FRAME: a hint for buffering; its length must still fit the file
      const uint64_t n = read_uint(8, "frame length");
      in_.require(n, "a frame");
      break;
    }
    case '(':
      marks_.push_back(stack_.size());
      break;
    case '0':
      pop();
      break;
    case '1':
      pop_to_mark();
      break;
    case '2':
      push(top());
      break;
    case 'N':
      push(PyValue::make(Kind::kNone));
      break;
    case 0x88:
    case 0x89: {
      PyRef value = PyValue::make(Kind::kBool);
      value->boolean = op == 0x88;
      push(std::move(value));
      break;
    }
    case 'J':
      push(PyValue::make_int(static_cast<int32_t>(read_uint(4, "BININT"))));
      break;
    case 'K':
      push(PyValue::make_int(static_cast<int64_t>(read_uint(1, "BININT1"))));
      break;
    case 'M':
      push(PyValue::make_int(static_cast<int64_t>(read_uint(2, "BININT2"))));
      break;
    case 0x8a:
      push_long(1);
      break;
    case 0x8b:
      push_long(4);
      break;
    case 'G': {  // BINFLOAT: big-endian IEEE double
      uint8_t raw[8];
      in_.read(raw, 8, "BINFLOAT");
      uint64_t bits = 0;
      for (uint8_t b : raw) bits = (bits << 8) | b;
      double value;
      std::memcpy(&value, &bits, sizeof value);
      push(PyValue::make_float(value));
      break;
    }
    case 0x8c:
      push(PyValue::make_str(read_text(read_uint(1, "str length"), "SHORT_BINUNICODE")));
      break;
    case 'X':
      push(PyValue::make_str(read_text(read_uint(4, "str length"), "BINUNICODE")));
      break;
    case 0x8d:
      push(PyValue::make_str(read_text(read_uint(8, "str length"), "BINUNICODE8")));
      break;
    case 'C':
      push(read_bytes(read_uint(1, "bytes length"), "SHORT_BINBYTES"));
      break;
    case 'B':
      push(read_bytes(read_uint(4, "bytes length"), "BINBYTES"));
      break;
    case 0x8e:
      push(read_bytes(read_uint(8, "bytes length"), "BINBYTES8"));
      break;
    case 0x96:
      push(read_bytes(read_uint(8, "bytearray length"), "BYTEARRAY8"));
      break;
    // Python 2 str; read as bytes (what Python 3 does with encoding='bytes').
    case 'U':
      push(read_bytes(read_uint(1, "string length"), "SHORT_BINSTRING"));
      break;
    case 'T':
      push(read_bytes(read_uint(4, "string length"), "BINSTRING"));
      break;
    case ']':
      push(container(Kind::kList));
      break;
    case 'l': {
      PyRef list = container(Kind::kList);
      list->items = pop_to_mark();
      push(std::move(list));
      break;
    }
    case 'a': {
      PyRef value = pop();
      append_items({std::move(value)});
      break;
    }
    case 'e': {
      std::vector<PyRef> values = pop_to_mark();
      append_items(std::move(values));
      break;
    }
    case ')':
      push(container(Kind::kTuple));
      break;
    case 0x85:
      make_tuple(1);
      break;
    case 0x86:
      make_tuple(2);
      break;
    case 0x87:
      make_tuple(3);
      break;
    case 't': {
      PyRef tuple = container(Kind::kTuple);
      tuple->items = pop_to_mark();
      push(std::move(tuple));
      break;
    }
    case '}':
      push(container(Kind::kDict));
      break;
    case 'd': {
      std::vector<PyRef> values = pop_to_mark();
      push(container(Kind::kDict));
      set_items(std::move(values));
      break;
    }
    case 's': {
      PyRef value = pop();
      PyRef key = pop();
      set_items({std::move(key), std::move(value)});
      break;
    }
    case 'u': {
      std::vector<PyRef> values = pop_to_mark();
      set_items(std::move(values));
      break;
    }
    case 'c': {
      const std::string module = read_line("GLOBAL module");
      push_global(module, read_line("GLOBAL name"));
      break;
    }
    case 0x93: {  // STACK_GLOBAL
      PyRef name = pop();
      PyRef module = pop();
      MMKD_CHECK(name->is(Kind::kStr) && module->is(Kind::kStr), "STACK_GLOBAL needs two str");
      push_global(module->text, name->text);
      break;
    }
    case 'R':
      reduce();
      break;
    case 'b':
      build();
      break;
    case 'q':
      memo_put(read_uint(1, "memo index"));
      break;
    case 'r':
      memo_put(read_uint(4, "memo index"));
      break;
    case 0x94:
      memo_put(memo_.size());
      break;
    case 'p':  // PUT and GET: protocol 0's memo opcodes, still legal in any later protocol
      memo_put(read_decimal("PUT memo index"));
      break;
    case 'g':
      memo_get(read_decimal("GET memo index"));
      break;
    case 'h':
      memo_get(read_uint(1, "memo index"));
      break;
    case 'j':
      memo_get(read_uint(4, "memo index"));
      break;
    case 0x81:
    case 0x92:
      MMKD_FAIL("NEWOBJ creates class instances, which mmkd does not load");
    case 0x97:
    case 0x98:
      MMKD_FAIL("out-of-band buffers (protocol 5 buffer_callback) are not supported");
    case 'Q':
      persistent_load();
      break;
    case 'P':
      MMKD_FAIL("protocol 0 persistent ids are not supported");
    case 'i':
    case 'o':
    case 0x82:
    case 0x83:
    case 0x84:
      MMKD_FAIL("opcode ", int(op), " creates objects, which mmkd does not load");
    default:
      MMKD_FAIL("opcode ", int(op),
                " is not supported (protocols 2-5 of numpy arrays and plain data are)");
  }
}

/// The tree must be acyclic and shallow enough for recursive consumers (and destructors).
/// Returns the nodes reachable from the root.
std::unordered_set<const PyValue*> Unpickler::check_result(const PyValue& root) const {
  struct Frame {
    const PyValue* node;
    size_t next;
  };
  std::unordered_set<const PyValue*> done;
  std::unordered_set<const PyValue*> open;
  std::vector<Frame> path{{&root, 0}};
  open.insert(&root);
  // Children are items, then dict keys and values, addressed by one running index.
  auto child_count = [](const PyValue* node) {
    return node->items.size() + 2 * node->entries.size();
  };
  auto child_at = [](const PyValue* node, size_t i) -> const PyValue* {
    if (i < node->items.size()) return node->items[i].get();
    const auto& entry = node->entries[(i - node->items.size()) / 2];
    return ((i - node->items.size()) % 2 == 0 ? entry.first : entry.second).get();
  };
  while (!path.empty()) {
    Frame& frame = path.back();
    if (frame.next == child_count(frame.node)) {
      open.erase(frame.node);
      done.insert(frame.node);
      path.pop_back();
      continue;
    }
    const PyValue* child = child_at(frame.node, frame.next++);
    if (done.count(child) != 0) continue;
    MMKD_CHECK(open.count(child) == 0,
               "pickle holds a container that contains itself (not supported)");
    MMKD_CHECK(static_cast<int>(path.size()) < limits_.max_nesting,
               "pickle nests containers deeper than ", limits_.max_nesting, " levels");
    open.insert(child);
    path.push_back({child, 0});
  }
  return done;
}

void Unpickler::break_references(const std::unordered_set<const PyValue*>& keep) {
  memo_.clear();
  stack_.clear();
  for (PyRef& node : containers_) {
    if (keep.count(node.get()) != 0) continue;
    node->items.clear();
    node->entries.clear();
  }
}

PyRef Unpickler::run() {
  try {
    // Protocols 2-5 always open with PROTO; anything else is not a pickle mmkd reads.
    const uint8_t first = in_.byte("the protocol header");
    MMKD_CHECK(first == 0x80, "not a pickle of protocol 2-5 (it starts with byte ", int(first),
               ", expected 128, the PROTO opcode)");
    dispatch(first);
    while (step()) {
    }
    PyRef root = pop();
    // Unreachable leftovers (memo, stack) may be deep or cyclic: unlink them before freeing.
    break_references(check_result(*root));
    return root;
  } catch (const Error& e) {
    break_references();
    const std::string message = e.what();
    if (message.rfind("truncated pickle", 0) == 0) throw;
    MMKD_FAIL(message, " (opcode at byte ", op_at_, ")");
  } catch (...) {
    break_references();
    throw;
  }
}

PyRef parse(ByteSource& source, const std::string& name, const PickleLimits& limits,
            const StorageLoader* storages = nullptr) {
  try {
    Unpickler unpickler(source, limits, storages);
    return unpickler.run();
  } catch (const Error& e) {
    MMKD_FAIL(name, ": ", e.what());
  } catch (const std::bad_alloc&) {
    MMKD_FAIL(name, ": out of memory while reading the pickle");
  }
}

}  // namespace

PyRef read_pickle_file(const std::string& path, const PickleLimits& limits) {
  detail::FileSource source = detail::FileSource::open(path);
  return parse(source, path, limits);
}

PyRef read_pickle_memory(const void* data, size_t size, const std::string& name,
                         const PickleLimits& limits) {
  detail::MemorySource source(data, size);
  return parse(source, name, limits);
}

PyRef read_torch_pickle_memory(const void* data, size_t size, const std::string& name,
                               const StorageLoader& storages, const PickleLimits& limits) {
  detail::MemorySource source(data, size);
  return parse(source, name, limits, &storages);
}

}  // namespace mmkd::data
