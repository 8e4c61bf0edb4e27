// SHA-256 (FIPS 180-4) of a byte string, as `sha256sum` prints it: what an exported model records
// of the configuration that trained it, so a file can be traced to its run.
#pragma once

#include <string>
#include <string_view>

namespace mmkd {

/// 64 lower-case hex digits.
std::string sha256_hex(std::string_view bytes);

}  // namespace mmkd
