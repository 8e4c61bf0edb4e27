#include "mmkd/data/torch_state_dict.h"

#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "mmkd/core/error.h"
#include "mmkd/core/zip_integrity.h"
#include "mmkd/data/pickle.h"

namespace mmkd::data {

namespace {

using caffe2::serialize::PyTorchStreamReader;

/// The reason a file is no zip archive, in the words a user can act on.
std::string describe_non_zip(const std::string& head) {
  if (!head.empty() && static_cast<unsigned char>(head[0]) == 0x80)
    return "a legacy (non-zip) torch.save file; save it again with a current PyTorch, "
           "torch.save(state_dict, f)";
  return "not a torch.save zip archive (it does not start with a zip record)";
}

torch::Tensor load_storage(PyTorchStreamReader& reader, std::map<std::string, torch::Tensor>& cache,
                           const std::string& key, torch::ScalarType dtype, int64_t numel) {
  if (const auto it = cache.find(key); it != cache.end()) {
    MMKD_CHECK(it->second.scalar_type() == dtype && it->second.numel() >= numel, "storage '", key,
               "' is referred to with two types or sizes");
    return it->second;
  }
  const std::string record = "data/" + key;
  MMKD_CHECK(reader.hasRecord(record), "the pickle refers to storage '", key,
             "', which the archive does not hold");
  const auto [data, size] = reader.getRecord(record);
  const auto item = static_cast<int64_t>(c10::elementSize(dtype));
  MMKD_CHECK(numel <= static_cast<int64_t>(size) / item, "storage '", key, "' claims ", numel,
             " elements of ", c10::toString(dtype), " but its record holds ", size, " bytes");
  torch::Tensor storage = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
  if (numel > 0) std::memcpy(storage.data_ptr(), data.get(), static_cast<size_t>(numel * item));
  cache.emplace(key, storage);
  return storage;
}

StateDict to_state_dict(const PyValue& root) {
  MMKD_CHECK(root.is(PyValue::Kind::kDict), "holds a ", root.describe(),
             ", not a state dict (a dict of tensors); docs/mult-import.md shows how to save one");
  StateDict result;
  for (const auto& [key, value] : root.entries) {
    MMKD_CHECK(key->is(PyValue::Kind::kStr), "a state dict key is a ", key->describe(),
               ", not a str");
    MMKD_CHECK(value->is(PyValue::Kind::kTensor), "entry '", key->text, "' is a ",
               value->describe(), ", not a tensor");
    result.emplace_back(key->text, value->tensor.contiguous());
  }
  return result;
}

StateDict read_archive(PyTorchStreamReader& reader) {
  if (reader.hasRecord("byteorder")) {
    const auto [data, size] = reader.getRecord("byteorder");
    const std::string order(static_cast<const char*>(data.get()), size);
    MMKD_CHECK(order == "little", "tensors stored in '", order, "' byte order (mmkd reads little)");
  }
  MMKD_CHECK(reader.hasRecord("data.pkl"), "not a torch.save archive (no data.pkl record)");
  const auto [pickle, size] = reader.getRecord("data.pkl");
  std::map<std::string, torch::Tensor> cache;
  const StorageLoader storages = [&](const std::string& key, torch::ScalarType dtype,
                                     int64_t numel) {
    return load_storage(reader, cache, key, dtype, numel);
  };
  PyRef root;
  try {
    root = read_torch_pickle_memory(pickle.get(), size, "data.pkl", storages);
  } catch (const Error& e) {
    const std::string message = e.what();
    // torch.save(model) pickles the model's class: point at the two lines that fix it.
    MMKD_CHECK(message.find("refers to global") == std::string::npos, message,
               "; a whole model saved with torch.save(model)? save model.state_dict() instead "
               "(docs/mult-import.md)");
    throw;
  }
  return to_state_dict(*root);
}

/// Runs `read` on a stream reader and gives every failure one message prefixed with `name`.
template <typename Open>
StateDict read_with(const std::string& name, Open open) {
  try {
    std::unique_ptr<PyTorchStreamReader> reader = open();
    return read_archive(*reader);
  } catch (const Error& e) {
    MMKD_FAIL(name, ": ", e.what());
  } catch (const c10::Error& e) {
    MMKD_FAIL(name, ": not a readable torch.save archive (", e.what_without_backtrace(), ")");
  } catch (const std::bad_alloc&) {
    MMKD_FAIL(name, ": out of memory while reading the state dict");
  }
}

std::string first_bytes(const void* data, size_t size) {
  return std::string(static_cast<const char*>(data), std::min<size_t>(size, 4));
}

bool is_zip(const std::string& head) { return head.rfind("PK\x03\x04", 0) == 0; }

}  // namespace

StateDict read_torch_state_dict(const std::string& path) {
  MMKD_CHECK(std::filesystem::is_regular_file(path), path, ": no such file");
  std::string head(4, '\0');
  {
    std::ifstream in(path, std::ios::binary);
    in.read(head.data(), 4);
    head.resize(static_cast<size_t>(in.gcount()));
  }
  MMKD_CHECK(is_zip(head), path, ": ", describe_non_zip(head));
  verify_zip_crcs(path);
  return read_with(path, [&] { return std::make_unique<PyTorchStreamReader>(path); });
}

StateDict read_torch_state_dict_memory(const void* data, size_t size, const std::string& name) {
  const std::string head = first_bytes(data, size);
  MMKD_CHECK(is_zip(head), name, ": ", describe_non_zip(head));
  auto stream = std::make_shared<std::istringstream>(
      std::string(static_cast<const char*>(data), size), std::ios::binary);
  return read_with(name, [&] { return std::make_unique<PyTorchStreamReader>(stream.get()); });
}

}  // namespace mmkd::data
