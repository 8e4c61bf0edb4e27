// A check that this library's own parallel loops really run in parallel.
#pragma once

#include <cstdint>

namespace mmkd {

/// Number of distinct threads at::parallel_for used for a loop compiled into this library, with
/// one work item per configured thread. at::parallel_for is a header template: compiled without
/// OpenMP it runs serially whatever torch::set_num_threads says, so this equals
/// torch::get_num_threads() only when the build is right. `mmkd bench` prints it.
int64_t parallel_for_threads();

}  // namespace mmkd
