// Reading the JSON files that runs and studies write (metrics.json, latency.json, ...).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace mmkd {

/// The JSON file at `path`, or nullopt when it cannot be opened; mmkd::Error naming the file when
/// it is not valid JSON.
std::optional<nlohmann::json> read_json_file(const std::string& path);

}  // namespace mmkd
