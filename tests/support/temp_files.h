// Finding the temporary files an atomic write may have left next to its target.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace mmkd::testing {

/// Entries of `path`'s directory named `<name of path>.tmp*`: what a failed or finished
/// write_file_atomic must never leave behind, whatever random suffix it chose.
inline std::vector<std::string> temp_files_of(const std::string& path) {
  const std::filesystem::path target(path);
  const std::filesystem::path dir =
      target.parent_path().empty() ? std::filesystem::path(".") : target.parent_path();
  const std::string prefix = target.filename().string() + ".tmp";
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0) found.push_back(name);
  }
  return found;
}

}  // namespace mmkd::testing
