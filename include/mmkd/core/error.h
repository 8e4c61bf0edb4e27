// The one exception type of mmkd and the macro that raises it with a precise message.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace mmkd {

/// Every user-facing failure (bad file, bad config key, bad shape) is an mmkd::Error whose
/// message names the file, key or option and what was expected. The CLI prints it and exits 1.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

}  // namespace mmkd

/// MMKD_CHECK(cond, "file ", path, ": expected ...") throws mmkd::Error when cond is false.
#define MMKD_CHECK(cond, ...)                                              \
  do {                                                                     \
    if (!(cond)) throw ::mmkd::Error(::mmkd::detail::concat(__VA_ARGS__)); \
  } while (0)

/// MMKD_FAIL("...") throws mmkd::Error unconditionally.
#define MMKD_FAIL(...) throw ::mmkd::Error(::mmkd::detail::concat(__VA_ARGS__))
