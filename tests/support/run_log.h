// Reading a run's log.csv in tests: one column, found by its header name.
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace mmkd::testing {

/// Column `name` of the log.csv at `path`, one value per epoch; empty when the file or column
/// is missing.
inline std::vector<double> log_column(const std::string& path, const std::string& name) {
  std::ifstream in(path);
  std::string line, field;
  if (!std::getline(in, line)) return {};
  int column = -1;
  std::stringstream header(line);
  for (int i = 0; std::getline(header, field, ','); ++i)
    if (field == name) column = i;
  std::vector<double> values;
  if (column < 0) return values;
  while (std::getline(in, line)) {
    std::stringstream row(line);
    for (int i = 0; i <= column; ++i) std::getline(row, field, ',');
    values.push_back(std::stod(field));
  }
  return values;
}

}  // namespace mmkd::testing
