#include "mmkd/core/environment.h"

#include <cstdlib>

#include "mmkd/core/error.h"

namespace mmkd {

EnvLookup env_or_process(const EnvLookup& lookup) {
  if (lookup) return lookup;
  return [](const char* name) { return static_cast<const char*>(std::getenv(name)); };
}

std::optional<int64_t> env_int(const EnvLookup& lookup, const char* name, int64_t lowest) {
  const char* text = lookup(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  MMKD_CHECK(*end == '\0' && value >= lowest, "environment variable ", name, "='", text,
             "': expected an integer >= ", lowest);
  return value;
}

}  // namespace mmkd
