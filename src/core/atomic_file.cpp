#include "mmkd/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "mmkd/core/error.h"

namespace mmkd {

namespace {

std::string errno_text() { return std::strerror(errno); }

void fsync_path(const std::string& path, int flags, bool required) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) {
    MMKD_CHECK(!required, "cannot open '", path, "' to fsync: ", errno_text());
    return;
  }
  const int rc = ::fsync(fd);
  const std::string error = rc != 0 ? errno_text() : "";
  ::close(fd);
  // Some file systems refuse fsync on directories (EINVAL); the rename is still atomic there.
  MMKD_CHECK(rc == 0 || !required, "cannot fsync '", path, "': ", error);
}

std::string parent_directory(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

void write_file_atomic(const std::string& path,
                       const std::function<void(const std::string& tmp_path)>& writer) {
  MMKD_CHECK(!path.empty(), "write_file_atomic: empty path");
  const std::string tmp_path = path + ".tmp-" + std::to_string(::getpid());
  try {
    writer(tmp_path);
    fsync_path(tmp_path, O_RDONLY, /*required=*/true);
    MMKD_CHECK(std::rename(tmp_path.c_str(), path.c_str()) == 0, "cannot rename '", tmp_path,
               "' to '", path, "': ", errno_text());
  } catch (...) {
    std::remove(tmp_path.c_str());
    throw;
  }
  fsync_path(parent_directory(path), O_RDONLY | O_DIRECTORY, /*required=*/false);
}

void write_text_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, [&](const std::string& tmp_path) {
    std::ofstream out(tmp_path, std::ios::binary | std::ios::trunc);
    MMKD_CHECK(out.is_open(), "cannot open '", tmp_path, "' for writing: ", errno_text());
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    MMKD_CHECK(!out.fail(), "cannot write '", tmp_path, "': ", errno_text());
  });
}

}  // namespace mmkd
