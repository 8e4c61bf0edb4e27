// Refusing inputs that are not regular files before opening them.
#pragma once

#include <string>

namespace mmkd {

/// Throws an mmkd::Error "<path>: is a directory|FIFO|device..., expected <expected>" when `path`
/// exists but is not a regular file (symlinks are followed). Opening a FIFO with no writer
/// blocks forever and a directory reads as an empty or broken stream, so every reader of user
/// files calls this first. A missing path is left to the caller's own "no such file" message.
void require_regular_file(const std::string& path, const std::string& expected);

}  // namespace mmkd
