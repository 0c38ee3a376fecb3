// AnyBCQ — tensor element types as safetensors names them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "anybcq/core/config.hpp"
#include "anybcq/core/error.hpp"
#include "anybcq/core/numeric.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace io {

//! Element types a safetensors file may hold (the names of the safetensors specification).
enum class DType : std::uint8_t { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

//! The safetensors spelling of `t` ("F16", "BF16", ...).
constexpr const char* dtype_name(DType t) {
  switch (t) {
    case DType::BOOL: return "BOOL";
    case DType::U8: return "U8";
    case DType::I8: return "I8";
    case DType::F8_E5M2: return "F8_E5M2";
    case DType::F8_E4M3: return "F8_E4M3";
    case DType::I16: return "I16";
    case DType::U16: return "U16";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I32: return "I32";
    case DType::U32: return "U32";
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I64: return "I64";
    case DType::U64: return "U64";
  }
  return "?";
}

//! Bytes per element of `t`.
constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::BOOL: case DType::U8: case DType::I8: case DType::F8_E5M2: case DType::F8_E4M3: return 1;
    case DType::I16: case DType::U16: case DType::F16: case DType::BF16: return 2;
    case DType::I32: case DType::U32: case DType::F32: return 4;
    case DType::F64: case DType::I64: case DType::U64: return 8;
  }
  return 0;
}

//! Parses a safetensors dtype name; false when the name is unknown.
inline bool parse_dtype(std::string_view s, DType& out) {
  for (int i = 0; i <= static_cast<int>(DType::U64); ++i) {
    const auto t = static_cast<DType>(i);
    if (s == dtype_name(t)) {
      out = t;
      return true;
    }
  }
  return false;
}

//! True for the floating types AnyBCQ quantizes and writes back: F32, F16, BF16 (and F64 on input).
constexpr bool is_float_dtype(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64;
}

//! The dtype of a storage element type (float, half_t, bfloat16_t, std::uint32_t, std::int32_t).
template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::F32;
  else if constexpr (std::is_same_v<T, half_t>) return DType::F16;
  else if constexpr (std::is_same_v<T, bfloat16_t>) return DType::BF16;
  else if constexpr (std::is_same_v<T, double>) return DType::F64;
  else if constexpr (std::is_same_v<T, std::uint32_t>) return DType::U32;
  else if constexpr (std::is_same_v<T, std::int32_t>) return DType::I32;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return DType::U8;
  else {
    static_assert(std::is_same_v<T, std::int8_t>, "dtype_of: unsupported element type");
    return DType::I8;
  }
}

//! Converts `n` little-endian elements of float dtype `t` at `src` (any alignment) to float.
inline void convert_to_float(DType t, const void* src, std::size_t n, float* out) {
  const auto* p = static_cast<const unsigned char*>(src);
  switch (t) {
    case DType::F32:
      if (n) std::memcpy(out, p, n * 4);
      return;
    case DType::F16:
      for (std::size_t i = 0; i < n; ++i) {
        half_t h;
        std::memcpy(&h.bits, p + 2 * i, 2);
        out[i] = to_float(h);
      }
      return;
    case DType::BF16:
      for (std::size_t i = 0; i < n; ++i) {
        bfloat16_t b;
        std::memcpy(&b.bits, p + 2 * i, 2);
        out[i] = to_float(b);
      }
      return;
    case DType::F64:
      for (std::size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, p + 8 * i, 8);
        out[i] = static_cast<float>(d);
      }
      return;
    default:
      ::anybcq::detail::throw_error("anybcq: cannot convert dtype ", dtype_name(t),
                          " to float; only F32, F16, BF16 and F64 are floating-point");
  }
}

//! Converts `n` floats to float dtype `t` (F32, F16 or BF16, round to nearest even) at `dst`.
inline void convert_from_float(const float* src, std::size_t n, DType t, void* dst) {
  auto* p = static_cast<unsigned char*>(dst);
  switch (t) {
    case DType::F32:
      if (n) std::memcpy(p, src, n * 4);
      return;
    case DType::F16:
      for (std::size_t i = 0; i < n; ++i) {
        const half_t h = to_half(src[i]);
        std::memcpy(p + 2 * i, &h.bits, 2);
      }
      return;
    case DType::BF16:
      for (std::size_t i = 0; i < n; ++i) {
        const bfloat16_t b = to_bfloat16(src[i]);
        std::memcpy(p + 2 * i, &b.bits, 2);
      }
      return;
    default:
      ::anybcq::detail::throw_error("anybcq: cannot write floats as dtype ", dtype_name(t), "; use F32, F16 or BF16");
  }
}

}  // namespace io
ANYBCQ_NAMESPACE_END
