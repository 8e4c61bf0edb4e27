#include "mmkd/core/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "mmkd/core/error.h"

namespace mmkd {

namespace {

constexpr int kCreateAttempts = 64;
constexpr int kSuffixLength = 12;

std::string random_suffix() {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  // random_device reads the kernel's entropy: another user cannot predict the next name.
  std::random_device device;
  std::uniform_int_distribution<int> pick(0, static_cast<int>(sizeof kAlphabet) - 2);
  std::string suffix(kSuffixLength, 'x');
  for (char& c : suffix) c = kAlphabet[pick(device)];
  return suffix;
}

/// The temporary file, created by us and nobody else: O_EXCL fails on any existing entry,
/// a symlink included (dangling or not), so nothing planted at the name is ever opened.
AtomicOutput create_temp(const std::string& path) {
  for (int attempt = 0; attempt < kCreateAttempts; ++attempt) {
    const std::string temp = path + ".tmp-" + random_suffix();
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0) return AtomicOutput(fd, path, temp);
    MMKD_CHECK(errno == EEXIST, "cannot write '", path, "': cannot create a temporary file in its ",
               "directory (", write_error_text(errno), ")");
  }
  MMKD_FAIL("cannot write '", path, "': ", kCreateAttempts,
            " random temporary names in its directory were all taken");
}

std::string parent_directory(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void fsync_directory(const std::string& path) {
  const int fd = ::open(parent_directory(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  // Some file systems refuse fsync on directories (EINVAL); the rename is atomic there anyway.
  ::fsync(fd);
  ::close(fd);
}

/// Flushes and closes `fd`; delayed allocation and NFS report a full disk only here.
void finish(int fd, const AtomicOutput& out) {
  const int synced = ::fsync(fd);
  const int sync_error = errno;
  const int closed = ::close(fd);
  MMKD_CHECK(synced == 0, "cannot write '", out.target(), "': ", write_error_text(sync_error));
  MMKD_CHECK(closed == 0, "cannot write '", out.target(), "': ", write_error_text(errno));
}

/// In a directory where others may rename entries (no sticky bit), the name could now point
/// elsewhere; renaming it would install their file at `path`.
void check_still_ours(const AtomicOutput& out) {
  struct stat by_name {};
  MMKD_CHECK(::lstat(out.temp_path().c_str(), &by_name) == 0 && by_name.st_dev == out.device() &&
                 by_name.st_ino == out.inode(),
             "cannot write '", out.target(), "': its temporary file '", out.temp_path(),
             "' was replaced by someone else while it was written");
}

}  // namespace

std::string write_error_text(int error) {
  switch (error) {
    case ENOSPC:
      return "no space left on device";
    case EDQUOT:
      return "disk quota exceeded";
    case EFBIG:
      return "file too large (the file system's or the process's file size limit)";
    default:
      return std::strerror(error);
  }
}

AtomicOutput::AtomicOutput(int fd, std::string target, std::string temp_path)
    : fd_(fd), target_(std::move(target)), temp_path_(std::move(temp_path)) {
  struct stat created {};
  if (::fstat(fd_, &created) == 0) {
    device_ = static_cast<unsigned long>(created.st_dev);
    inode_ = static_cast<unsigned long>(created.st_ino);
  }
}

void AtomicOutput::write(const void* data, size_t n) {
  const char* bytes = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t done = ::write(fd_, bytes, n);
    if (done < 0 && errno == EINTR) continue;
    MMKD_CHECK(done > 0, "cannot write '", target_,
               "': ", write_error_text(done < 0 ? errno : ENOSPC), " after ", written_, " bytes");
    bytes += done;
    n -= static_cast<size_t>(done);
    written_ += static_cast<size_t>(done);
  }
}

void write_file_atomic(const std::string& path, const std::function<void(AtomicOutput&)>& writer) {
  MMKD_CHECK(!path.empty(), "write_file_atomic: empty path");
  AtomicOutput out = create_temp(path);
  // The bytes go to the descriptor O_EXCL gave us, never to a name that could be swapped; the
  // name is used once more, for the rename, after checking it is still our file.
  bool fd_open = true;
  try {
    writer(out);
    fd_open = false;
    finish(out.fd(), out);
    check_still_ours(out);
    MMKD_CHECK(std::rename(out.temp_path().c_str(), path.c_str()) == 0, "cannot write '", path,
               "': cannot rename the temporary file over it (", write_error_text(errno), ")");
  } catch (...) {
    if (fd_open) ::close(out.fd());
    std::remove(out.temp_path().c_str());
    throw;
  }
  fsync_directory(path);
}

void write_text_atomic(const std::string& path, const std::string& text) {
  write_file_atomic(path, [&](AtomicOutput& out) { out.write(text); });
}

}  // namespace mmkd
