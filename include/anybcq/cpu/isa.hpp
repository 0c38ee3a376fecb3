// AnyBCQ — instruction-set levels of the CPU kernels and their run-time detection.
#pragma once
#include "anybcq/core/config.hpp"
#include "anybcq/core/error.hpp"

#if defined(__x86_64__) || defined(__i386__)
#define ANYBCQ_X86 1
#include <immintrin.h>
#else
#define ANYBCQ_X86 0
#endif

#if ANYBCQ_X86 && (defined(__GNUC__) || defined(__clang__))
//! Kernels for x86 SIMD levels are compiled (function-level target attributes, no global -m flags).
#define ANYBCQ_CPU_SIMD 1
#define ANYBCQ_TARGET_AVX2 __attribute__((target("avx2,fma,f16c,bmi2")))
#define ANYBCQ_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx512vnni,fma,f16c,bmi2")))
// GCC 12 reports its own _mm*_undefined_* helpers as uninitialized when intrinsics are inlined into
// target-attributed functions; silence exactly those two warnings around the SIMD kernels.
#if defined(__clang__)
#define ANYBCQ_SIMD_DIAGNOSTICS_BEGIN
#define ANYBCQ_SIMD_DIAGNOSTICS_END
#else
#define ANYBCQ_SIMD_DIAGNOSTICS_BEGIN \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"") \
      _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#define ANYBCQ_SIMD_DIAGNOSTICS_END _Pragma("GCC diagnostic pop")
#endif
#else
#define ANYBCQ_CPU_SIMD 0
#endif

ANYBCQ_NAMESPACE_BEGIN
namespace cpu {

//! Kernel instruction-set level; each level's results equal the scalar path's bit for bit.
enum class Isa {
  kAuto = -1,    //!< the best level this CPU supports
  kScalar = 0,   //!< portable C++
  kAvx2 = 1,     //!< AVX2 + FMA + F16C
  kAvx512 = 2,   //!< AVX-512 F/BW/VL/DQ + VBMI (vpermb) + VNNI (vpdpbusd)
};

//! Short name of an ISA level.
inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAuto: return "auto";
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "?";
}

//! True when this CPU (and OS) can run kernels of level `isa`.
inline bool isa_supported(Isa isa) {
  if (isa == Isa::kScalar || isa == Isa::kAuto) return true;
#if ANYBCQ_CPU_SIMD
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == Isa::kAvx2) return avx2;
  if (isa == Isa::kAvx512)
    return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vnni");
#endif
  return false;
}

//! The best level this CPU supports.
inline Isa detect_isa() {
  if (isa_supported(Isa::kAvx512)) return Isa::kAvx512;
  if (isa_supported(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kScalar;
}

//! `requested`, or the detected level for kAuto; throws if the CPU cannot run the requested level.
inline Isa resolve_isa(Isa requested) {
  if (requested == Isa::kAuto) return detect_isa();
  ANYBCQ_REQUIRE(isa_supported(requested), "instruction set ", isa_name(requested),
                 " was requested but this CPU does not support it (best available: ", isa_name(detect_isa()),
                 ")");
  return requested;
}

}  // namespace cpu
ANYBCQ_NAMESPACE_END
