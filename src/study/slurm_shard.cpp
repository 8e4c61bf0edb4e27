#include "mmkd/study/slurm_shard.h"

#include <cstdlib>

#include "mmkd/core/error.h"

namespace mmkd::study {

namespace {

int64_t read_int(const std::function<const char*(const char*)>& lookup, const char* name,
                 int64_t fallback) {
  const char* text = lookup(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  MMKD_CHECK(*end == '\0' && value >= 0, "environment variable ", name, "='", text,
             "': expected a non-negative integer");
  return value;
}

}  // namespace

std::optional<std::string> slurm_array_shard(
    const std::function<const char*(const char*)>& lookup_or_null) {
  const auto lookup = lookup_or_null ? lookup_or_null
                                     : std::function<const char*(const char*)>(
                                           [](const char* name) { return std::getenv(name); });
  const int64_t id = read_int(lookup, "SLURM_ARRAY_TASK_ID", -1);
  if (id < 0) return std::nullopt;
  const int64_t count = read_int(lookup, "SLURM_ARRAY_TASK_COUNT", -1);
  MMKD_CHECK(count >= 1, "environment: SLURM_ARRAY_TASK_ID=", id,
             " is set but SLURM_ARRAY_TASK_COUNT is not (or is 0)");
  const int64_t min = read_int(lookup, "SLURM_ARRAY_TASK_MIN", 0);
  MMKD_CHECK(id >= min && id < min + count, "environment: SLURM_ARRAY_TASK_ID=", id,
             " is outside the array ", min, "..", min + count - 1,
             " (SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT); mmkd shards need contiguous ids");
  return std::to_string(id - min + 1) + "/" + std::to_string(count);
}

}  // namespace mmkd::study
