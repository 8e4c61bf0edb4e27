// Start-up tuning of glibc malloc so that a training loop keeps its memory instead of
// returning it to the kernel after every step and faulting it back in on the next.
#pragma once

#include <string>

namespace mmkd {

/// Applies mallopt settings for LibTorch's allocation pattern (large short-lived tensors of the
/// same sizes every step): no mmap'd blocks (they are unmapped on free and page-faulted back on
/// the next allocation), no trimming of the heap top, heap growth in 64 MiB steps, at most two
/// arenas. Skipped when the environment sets MMKD_MALLOC=default. Call once, first thing in
/// main(), before any large allocation. Returns a one-line description of what was done.
std::string tune_allocator();

}  // namespace mmkd
