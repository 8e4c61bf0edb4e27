// A study's shard from a Slurm job array: each array task runs its share of the study when
// `mmkd study` is given no --shard (docs/scale.md).
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace mmkd::study {

/// "i/n" from SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT and SLURM_ARRAY_TASK_MIN (task ids
/// need not start at 0 or 1: i = id - min + 1), read through `lookup` (getenv by default); none
/// when SLURM_ARRAY_TASK_ID is unset. Values that are no integers, or an id outside
/// min..min+count-1, are an mmkd::Error naming the variable.
std::optional<std::string> slurm_array_shard(
    const std::function<const char*(const char*)>& lookup = nullptr);

}  // namespace mmkd::study
