// AnyBCQ — 16-bit float storage types usable on host and device, and conversions.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "anybcq/core/config.hpp"

ANYBCQ_NAMESPACE_BEGIN

//! IEEE binary16 storage (bit pattern only; arithmetic goes through float). == compares bit patterns.
struct half_t {
  std::uint16_t bits;
  friend constexpr bool operator==(half_t a, half_t b) { return a.bits == b.bits; }
  friend constexpr bool operator!=(half_t a, half_t b) { return a.bits != b.bits; }
};
//! bfloat16 storage (upper 16 bits of a binary32). == compares bit patterns.
struct bfloat16_t {
  std::uint16_t bits;
  friend constexpr bool operator==(bfloat16_t a, bfloat16_t b) { return a.bits == b.bits; }
  friend constexpr bool operator!=(bfloat16_t a, bfloat16_t b) { return a.bits != b.bits; }
};
static_assert(sizeof(half_t) == 2 && std::is_trivially_copyable_v<half_t>);
static_assert(sizeof(bfloat16_t) == 2 && std::is_trivially_copyable_v<bfloat16_t>);

namespace detail {
ANYBCQ_HOST_DEVICE inline std::uint32_t float_bits(float f) {
#if ANYBCQ_IS_DEVICE_CODE
  return __float_as_uint(f);
#else
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
ANYBCQ_HOST_DEVICE inline float bits_float(std::uint32_t u) {
#if ANYBCQ_IS_DEVICE_CODE
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}
}  // namespace detail

//! binary16 -> float, exact (handles subnormals, Inf, NaN).
ANYBCQ_HOST_DEVICE inline float to_float(half_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h.bits & 0x8000u) << 16;
  std::uint32_t exp = (h.bits >> 10) & 0x1Fu;
  std::uint32_t man = h.bits & 0x3FFu;
  std::uint32_t u;
  if (exp == 0x1F) {
    u = sign | 0x7F800000u | (man << 13);
  } else if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        man <<= 1;
      } while ((man & 0x400u) == 0);
      u = sign | (static_cast<std::uint32_t>(127 - 15 - e) << 23) | ((man & 0x3FFu) << 13);
    }
  } else {
    u = sign | ((exp + 112u) << 23) | (man << 13);
  }
  return detail::bits_float(u);
}

//! float -> binary16, round to nearest even; overflow gives Inf, NaN stays NaN.
ANYBCQ_HOST_DEVICE inline half_t to_half(float f) {
  const std::uint32_t u = detail::float_bits(f);
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  const std::uint32_t absu = u & 0x7FFFFFFFu;
  if (absu >= 0x7F800000u) {  // Inf or NaN
    return half_t{static_cast<std::uint16_t>(sign | 0x7C00u | (absu > 0x7F800000u ? 0x200u : 0u))};
  }
  if (absu >= 0x477FF000u) {  // rounds to >= 65520: overflow
    return half_t{static_cast<std::uint16_t>(sign | 0x7C00u)};
  }
  if (absu < 0x38800000u) {  // below 2^-14: subnormal or zero
    if (absu < 0x33000000u) return half_t{static_cast<std::uint16_t>(sign)};  // < 2^-25: to zero
    const std::uint32_t exp = absu >> 23;
    const std::uint32_t man = (absu & 0x7FFFFFu) | 0x800000u;
    const std::uint32_t shift = 126u - exp;  // 14..24
    std::uint32_t h = man >> shift;
    const std::uint32_t rem = man & ((1u << shift) - 1u);
    const std::uint32_t half_way = 1u << (shift - 1u);
    if (rem > half_way || (rem == half_way && (h & 1u))) ++h;
    return half_t{static_cast<std::uint16_t>(sign | h)};
  }
  std::uint32_t h = ((absu >> 13) - (112u << 10));
  const std::uint32_t rem = absu & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return half_t{static_cast<std::uint16_t>(sign | h)};
}

//! bfloat16 -> float, exact.
ANYBCQ_HOST_DEVICE inline float to_float(bfloat16_t b) {
  return detail::bits_float(static_cast<std::uint32_t>(b.bits) << 16);
}

//! float -> bfloat16, round to nearest even; NaN stays NaN.
ANYBCQ_HOST_DEVICE inline bfloat16_t to_bfloat16(float f) {
  const std::uint32_t u = detail::float_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return bfloat16_t{static_cast<std::uint16_t>((u >> 16) | 0x40u)};
  const std::uint32_t rounded = u + 0x7FFFu + ((u >> 16) & 1u);
  return bfloat16_t{static_cast<std::uint16_t>(rounded >> 16)};
}

ANYBCQ_HOST_DEVICE inline float to_float(float f) { return f; }
ANYBCQ_HOST_DEVICE inline double to_float(double d) { return d; }  //!< identity, keeps double precision

//! Convert a float to storage type T (float, half_t or bfloat16_t).
template <class T>
ANYBCQ_HOST_DEVICE inline T from_float(float f) {
  if constexpr (std::is_same_v<T, half_t>) {
    return to_half(f);
  } else if constexpr (std::is_same_v<T, bfloat16_t>) {
    return to_bfloat16(f);
  } else {
    static_assert(std::is_same_v<T, float>, "from_float: T must be float, half_t or bfloat16_t");
    return f;
  }
}

//! True for the element types AnyBCQ stores and reads: float, half_t, bfloat16_t.
template <class T>
inline constexpr bool is_storage_float_v =
    std::is_same_v<T, float> || std::is_same_v<T, half_t> || std::is_same_v<T, bfloat16_t>;

//! Short name of a storage type ("f32", "f16", "bf16").
template <class T>
constexpr const char* type_name() {
  if constexpr (std::is_same_v<T, half_t>) return "f16";
  else if constexpr (std::is_same_v<T, bfloat16_t>) return "bf16";
  else return "f32";
}

ANYBCQ_NAMESPACE_END
