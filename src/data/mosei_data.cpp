#include "mmkd/data/mosei_data.h"

#include "mmkd/core/error.h"

namespace mmkd::data {

int64_t CleanReport::total() const {
  int64_t sum = 0;
  for (const auto& [split, counts] : replaced)
    for (int64_t c : counts) sum += c;
  return sum;
}

const Split& MoseiData::split(const std::string& name) const {
  const auto it = splits.find(name);
  if (it != splits.end()) return it->second;
  std::string available;
  for (const auto& [key, value] : splits) available += (available.empty() ? "" : ", ") + key;
  MMKD_FAIL(source, ": no split '", name, "' (available: ", available, ")");
}

}  // namespace mmkd::data
