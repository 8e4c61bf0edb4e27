// Making writes fail as on a full disk: a tiny tmpfs (ENOSPC) or a file size limit (EFBIG).
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <filesystem>
#include <string>

namespace mmkd::testing {

/// A tmpfs of `bytes` mounted on a fresh directory, unmounted and removed on destruction.
/// Mounting needs CAP_SYS_ADMIN; where it is refused, mounted() is false and tests skip.
class SmallTmpfs {
 public:
  explicit SmallTmpfs(size_t bytes) {
    std::string pattern = (std::filesystem::temp_directory_path() / "mmkd_tmpfs_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return;
    path_ = pattern;
    const std::string options = "size=" + std::to_string(bytes);
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~SmallTmpfs() {
    if (mounted_) ::umount(path_.c_str());
    if (!path_.empty()) std::filesystem::remove_all(path_);
  }
  SmallTmpfs(const SmallTmpfs&) = delete;
  SmallTmpfs& operator=(const SmallTmpfs&) = delete;

  bool mounted() const { return mounted_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& str() const { return path_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

/// While alive, no file of this process (or of children it starts) can grow beyond `bytes`:
/// write() fails with EFBIG (SIGXFSZ, which would kill the process, is ignored). Works for
/// any user, so a write failure can always be injected.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    previous_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit = saved_;
    limit.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    ::signal(SIGXFSZ, previous_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit saved_{};
  sighandler_t previous_handler_ = SIG_DFL;
};

}  // namespace mmkd::testing
