// libFuzzer target: a torch.save state dict's data.pkl on arbitrary bytes, read with the torch
// globals and persistent ids that `mmkd import mult` allows; storages are served from memory.
#include <cstdint>

#include "mmkd/core/error.h"
#include "mmkd/data/pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Storages of at most 4096 elements, as an archive could hold them; a bigger claim is refused
  // the way the archive reader refuses a storage larger than its record.
  const mmkd::data::StorageLoader storages = [](const std::string& key, torch::ScalarType dtype,
                                                int64_t numel) {
    MMKD_CHECK(numel <= 4096, "storage '", key, "' larger than its record");
    return torch::zeros({4096}, torch::TensorOptions().dtype(dtype));
  };
  try {
    const auto root = mmkd::data::read_torch_pickle_memory(data, size, "fuzz", storages);
    (void)root->describe();
  } catch (const mmkd::Error&) {
  }
  return 0;
}
