// libFuzzer target: the safe pickle reader on arbitrary bytes, then a write/re-read round trip.
#include <cstdint>
#include <cstdlib>

#include "mmkd/core/error.h"
#include "mmkd/data/pickle.h"
#include "mmkd/data/pickle_writer.h"

namespace {

// Any input must end in a value or an mmkd::Error; other exceptions and sanitizer reports are bugs.
void round_trip(const mmkd::data::PyValue& value) {
  std::string bytes;
  try {
    bytes = mmkd::data::write_pickle_bytes(value);
  } catch (const mmkd::Error&) {
    return;  // values the writer does not write (dtype objects, object arrays of non-strings)
  }
  // What the writer wrote must read back.
  mmkd::data::read_pickle_memory(bytes.data(), bytes.size(), "round trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mmkd::data::PyRef root;
  try {
    root = mmkd::data::read_pickle_memory(data, size, "fuzz");
  } catch (const mmkd::Error&) {
    return 0;
  }
  (void)root->describe();
  round_trip(*root);
  return 0;
}
