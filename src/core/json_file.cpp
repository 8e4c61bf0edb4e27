#include "mmkd/core/json_file.h"

#include <fstream>

#include "mmkd/core/error.h"
#include "mmkd/core/input_file.h"

namespace mmkd {

std::optional<nlohmann::json> read_json_file(const std::string& path) {
  require_regular_file(path, "a JSON file");
  std::ifstream in(path);
  if (!in) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  MMKD_CHECK(!j.is_discarded(), path, ": not valid JSON");
  return j;
}

}  // namespace mmkd
