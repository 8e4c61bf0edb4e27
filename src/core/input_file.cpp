#include "mmkd/core/input_file.h"

#include <sys/stat.h>

#include "mmkd/core/error.h"

namespace mmkd {

namespace {

const char* kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "not a regular file";
}

}  // namespace

void require_regular_file(const std::string& path, const std::string& expected) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return;  // stat never blocks, unlike open on a FIFO
  MMKD_CHECK(S_ISREG(info.st_mode), path, ": is ", kind_of(info.st_mode), ", expected ", expected);
}

}  // namespace mmkd
