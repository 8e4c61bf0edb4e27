// Reading environment variables strictly: launchers (torchrun, Slurm, `--nproc`) configure mmkd
// through them, and a mistyped value must be an error naming the variable, not a silent 0.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

namespace mmkd {

/// Looks a variable up by name; nullptr when unset. Tests pass their own table.
using EnvLookup = std::function<const char*(const char*)>;

/// `lookup`, or the process environment (getenv) when `lookup` is empty.
EnvLookup env_or_process(const EnvLookup& lookup);

/// The integer in variable `name`; none when it is unset or empty. A value that is no integer,
/// or is below `lowest`, is an mmkd::Error naming the variable and its text.
std::optional<int64_t> env_int(const EnvLookup& lookup, const char* name, int64_t lowest);

}  // namespace mmkd
