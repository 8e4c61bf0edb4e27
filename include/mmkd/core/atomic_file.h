// Crash-safe file writes: write a fresh temporary file next to the target, fsync, rename over it.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <utility>

namespace mmkd {

/// The open temporary file of one atomic write. Writers stream their bytes through write();
/// every failure (a full disk above all) is an mmkd::Error naming the target path.
class AtomicOutput {
 public:
  /// Takes ownership of `fd`, the freshly created `temp_path` (see write_file_atomic).
  AtomicOutput(int fd, std::string target, std::string temp_path);
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  /// Writes all `n` bytes (retrying short writes and EINTR).
  void write(const void* data, size_t n);
  void write(const std::string& text) { write(text.data(), text.size()); }
  /// Bytes written so far.
  size_t size() const { return written_; }
  /// The file the write will replace (for messages).
  const std::string& target() const { return target_; }
  /// The temporary file's name (tests; never reopen it by name).
  const std::string& temp_path() const { return temp_path_; }
  int fd() const { return fd_; }
  /// Identity of the created file, to check that its name still leads to it before the rename.
  unsigned long device() const { return device_; }
  unsigned long inode() const { return inode_; }

 private:
  int fd_;
  std::string target_;
  std::string temp_path_;
  size_t written_ = 0;
  unsigned long device_ = 0;
  unsigned long inode_ = 0;
};

/// Creates a temporary file `path.tmp-XXXXXXXXXXXX` (random suffix) in the target's directory
/// exclusively (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0644 less the umask; another name on EEXIST),
/// so a file or symlink planted there by another user is never written through. Calls
/// `writer(out)`, fsyncs the file, renames it over `path` (atomic on POSIX: readers see the old
/// file or the new one; a symlink at `path` is replaced, not followed) and fsyncs the directory.
/// On any failure (the writer throws, it writes nothing, the disk is full, fsync or rename
/// fails) the temporary file is removed, `path` is left as it was and an mmkd::Error naming
/// `path` propagates (the writer's own exception type is kept).
void write_file_atomic(const std::string& path, const std::function<void(AtomicOutput&)>& writer);

/// write_file_atomic with a writer that stores `text` verbatim (binary, no newline added).
void write_text_atomic(const std::string& path, const std::string& text);

/// "no space left on device", "disk quota exceeded", ... for errno `error`: what a user reads
/// in every write error.
std::string write_error_text(int error);

}  // namespace mmkd
