// Counter-based dropout masks: whether element j of row r is kept is a hash of (seed, r, j), so a
// backward pass regenerates the mask instead of storing it, and any thread count draws the same
// mask. Shared by the fused attention kernel and the element-wise dropout.
#pragma once

#include <algorithm>
#include <cstdint>

#if defined(__GNUC__) || defined(__clang__)
#define MMKD_HASH_INLINE inline __attribute__((always_inline))
#else
#define MMKD_HASH_INLINE inline
#endif

namespace mmkd::nn::dropout_hash {

/// SplitMix64's finaliser: a bijection of 64 bits whose outputs pass BigCrush for counter inputs.
MMKD_HASH_INLINE uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// Uniform 32-bit x below which an element is dropped: P(x < threshold) = p (to 2^-32).
inline uint32_t drop_threshold(double p) {
  return static_cast<uint32_t>(std::min(p * 4294967296.0, 4294967295.0));
}

/// Multipliers of row `row` (keep_scale if kept, else 0) for elements [0, n). Integer ops only,
/// written so that compilers vectorise the loop.
MMKD_HASH_INLINE void fill_row(uint64_t seed, uint64_t row, uint32_t threshold, float keep_scale,
                               int64_t n, float* z) {
  const uint64_t key = mix64(seed ^ mix64(row));
  const uint32_t base = static_cast<uint32_t>(key);
  const uint32_t salt = static_cast<uint32_t>(key >> 32);
  for (int64_t j = 0; j < n; ++j) {
    uint32_t x = (base + static_cast<uint32_t>(j) * 0x9E3779B9u) ^ salt;
    x ^= x >> 16;  // the "lowbias32" integer hash
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    z[j] = x >= threshold ? keep_scale : 0.0f;
  }
}

}  // namespace mmkd::nn::dropout_hash
