// Running the mmkd CLI (and other commands) from tests.
#pragma once

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

namespace mmkd::testing {

struct CommandResult {
  int status = -1;     ///< exit code (0 = success)
  std::string output;  ///< stdout and stderr together
};

/// Runs `command` through the shell, capturing stdout and stderr.
inline CommandResult run_command(const std::string& command) {
  CommandResult result;
  std::array<char, 4096> buffer{};
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  while (fgets(buffer.data(), buffer.size(), pipe) != nullptr) result.output += buffer.data();
  const int raw = pclose(pipe);
  result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return result;
}

/// Runs the built `mmkd` with `arguments`.
inline CommandResult run_cli(const std::string& arguments) {
  return run_command(std::string(MMKD_CLI_PATH) + " " + arguments);
}

/// The repository root (tests/fixtures/../..).
inline std::string repo_path(const std::string& relative) {
  return (std::filesystem::path(MMKD_FIXTURES_DIR) / ".." / ".." / relative).lexically_normal();
}

/// A fresh, empty directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(std::filesystem::temp_directory_path() /
              ("mmkd_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace mmkd::testing
