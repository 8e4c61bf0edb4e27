#include "mmkd/core/allocator.h"

#include <climits>
#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace mmkd {

std::string tune_allocator() {
  const char* env = std::getenv("MMKD_MALLOC");
  if (env != nullptr && std::strcmp(env, "default") == 0) return "glibc defaults (MMKD_MALLOC)";
#if defined(__GLIBC__)
  // glibc serves blocks above M_MMAP_THRESHOLD (dynamic, at most 32 MiB) with mmap and unmaps
  // them on free; a [24,5,500,500] attention map is 120 MB, so every step faulted every page of
  // every map back in (MulT's Python: ~60% of an epoch in the kernel). Keep everything on the
  // heap and never give the top back: the process plateaus at its peak and stops faulting.
  bool ok = mallopt(M_MMAP_MAX, 0) == 1;
  ok = mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1 && ok;  // ~2 GiB, the most mallopt takes
  ok = mallopt(M_TOP_PAD, 64 << 20) == 1 && ok;        // grow the heap 64 MiB at a time
  ok = mallopt(M_ARENA_MAX, 2) == 1 && ok;             // 2 cores: no per-thread arena sprawl
  return ok ? "glibc: no mmap blocks, no trim, 64 MiB top pad, 2 arenas"
            : "glibc: mallopt refused some settings";
#else
  return "not glibc: allocator left as is";
#endif
}

}  // namespace mmkd
