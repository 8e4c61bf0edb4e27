#include "mmkd/study/slurm_shard.h"

#include "mmkd/core/environment.h"
#include "mmkd/core/error.h"

namespace mmkd::study {

std::optional<std::string> slurm_array_shard(
    const std::function<const char*(const char*)>& lookup_or_null) {
  const auto lookup = env_or_process(lookup_or_null);
  const auto task = env_int(lookup, "SLURM_ARRAY_TASK_ID", 0);
  if (!task) return std::nullopt;
  const int64_t id = *task;
  const int64_t count = env_int(lookup, "SLURM_ARRAY_TASK_COUNT", 0).value_or(0);
  MMKD_CHECK(count >= 1, "environment: SLURM_ARRAY_TASK_ID=", id,
             " is set but SLURM_ARRAY_TASK_COUNT is not (or is 0)");
  const int64_t min = env_int(lookup, "SLURM_ARRAY_TASK_MIN", 0).value_or(0);
  MMKD_CHECK(id >= min && id < min + count, "environment: SLURM_ARRAY_TASK_ID=", id,
             " is outside the array ", min, "..", min + count - 1,
             " (SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT); mmkd shards need contiguous ids");
  return std::to_string(id - min + 1) + "/" + std::to_string(count);
}

}  // namespace mmkd::study
