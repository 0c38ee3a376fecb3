// AnyBCQ — round-to-nearest uniform quantization, the baseline BCQ is compared with.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

#include "anybcq/core/error.hpp"
#include "anybcq/core/numeric.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace quant {

//! Asymmetric uniform round-to-nearest at `bits` per weight with a scale and zero point per group of
//! `group` inputs (min/max range, scale and minimum stored as Scale); returns the dequantized matrix.
template <class Scale = half_t, class T>
std::vector<float> rtn_dequantize(const T* w, index_t rows, index_t cols, int bits, index_t group) {
  ANYBCQ_REQUIRE(rows > 0 && cols > 0, "rtn: matrix is empty (", rows, " x ", cols, ")");
  ANYBCQ_REQUIRE(bits >= 1 && bits <= kMaxBits, "rtn: bits = ", bits, " is outside 1..", kMaxBits);
  ANYBCQ_REQUIRE(group > 0 && cols % group == 0, "rtn: group size ", group, " does not divide K = ", cols);
  std::vector<float> out(static_cast<std::size_t>(rows * cols));
  const float qmax = float((1 << bits) - 1);
  for (index_t m = 0; m < rows; ++m)
    for (index_t k0 = 0; k0 < cols; k0 += group) {
      float lo = INFINITY, hi = -INFINITY;
      for (index_t k = k0; k < k0 + group; ++k) {
        lo = std::min(lo, to_float(w[m * cols + k]));
        hi = std::max(hi, to_float(w[m * cols + k]));
      }
      const float scale = to_float(from_float<Scale>((hi - lo) / qmax));
      const float zero = to_float(from_float<Scale>(lo));
      for (index_t k = k0; k < k0 + group; ++k) {
        const float x = to_float(w[m * cols + k]);
        const float q = scale > 0 ? std::clamp(std::nearbyint((x - zero) / scale), 0.0f, qmax) : 0.0f;
        out[static_cast<std::size_t>(m * cols + k)] = zero + q * scale;
      }
    }
  return out;
}

}  // namespace quant
ANYBCQ_NAMESPACE_END
