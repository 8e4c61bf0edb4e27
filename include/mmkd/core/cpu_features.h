// What the CPU offers the hand-vectorised kernels (fused attention, hashed dropout, CRD's row
// scores): each compiles an AVX2 clone beside its generic code and picks one at run time, so a
// binary built for baseline x86-64 still uses the wider units where they exist.
#pragma once

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
/// Defined where `__attribute__((target("avx2,fma")))` clones compile and can be dispatched.
#define MMKD_X86_CLONES 1
#endif

namespace mmkd {

#ifdef MMKD_X86_CLONES
inline bool cpu_has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}

inline bool cpu_has_avx2_fma() {
  static const bool yes = cpu_has_avx2() && __builtin_cpu_supports("fma");
  return yes;
}
#endif

}  // namespace mmkd
