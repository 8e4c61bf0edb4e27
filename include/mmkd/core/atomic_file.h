// Crash-safe file writes: write a temporary file next to the target, fsync, rename over it.
#pragma once

#include <functional>
#include <string>

namespace mmkd {

/// Calls `writer(tmp_path)` with tmp_path = path + ".tmp-<pid>" (same directory, so the rename
/// stays on one file system), fsyncs the temporary file, renames it over `path` (atomic on
/// POSIX: readers see the old file or the new one, never a partial one) and fsyncs the
/// directory. If the writer throws, or the writer leaves no file, or fsync/rename fails, the
/// temporary file is removed and the error propagates (I/O failures as mmkd::Error naming the
/// path); `path` is then left as it was.
void write_file_atomic(const std::string& path,
                       const std::function<void(const std::string& tmp_path)>& writer);

/// write_file_atomic with a writer that stores `text` verbatim (binary mode, no newline added).
void write_text_atomic(const std::string& path, const std::string& text);

}  // namespace mmkd
