// The message of the mmkd::Error an action throws, for tests that check what a refusal says.
#pragma once

#include <functional>
#include <string>

#include "mmkd/core/error.h"

namespace mmkd::testing {

/// The what() of the mmkd::Error `action` throws; "" when it throws none.
inline std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace mmkd::testing
