// mmkd's version, as `mmkd --version` prints it and exported models record it. Keep it equal to
// project(VERSION) in CMakeLists.txt.
#pragma once

namespace mmkd {

inline constexpr const char* kVersion = "0.1.0";

}  // namespace mmkd
