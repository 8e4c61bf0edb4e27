#include "mmkd/core/parallelism.h"

#include <ATen/Parallel.h>

#include <mutex>
#include <set>

// LibTorch's OpenMP backend only parallelises code built with OpenMP (see CMakeLists.txt).
#if AT_PARALLEL_OPENMP && !defined(_OPENMP)
#error "LibTorch uses OpenMP: build mmkd with OpenMP or at::parallel_for runs on one thread"
#endif

namespace mmkd {

int64_t parallel_for_threads() {
  std::mutex mutex;
  std::set<int> ids;
  at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) {
    const std::lock_guard<std::mutex> lock(mutex);
    ids.insert(at::get_thread_num());
  });
  return static_cast<int64_t>(ids.size());
}

}  // namespace mmkd
