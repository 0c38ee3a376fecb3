// AnyBCQ — dequantization and error metrics without Eigen (usable from nvcc-compiled tests).
#pragma once
#include <cmath>
#include <vector>

#include "anybcq/core/numeric.hpp"
#include "anybcq/core/weights.hpp"

ANYBCQ_NAMESPACE_BEGIN
namespace cpu {

//! Ŵ_p (M×K, row-major) written to `out`, accumulated in float: β + Σ_i α_i·b_i, i in plane order.
template <class Layout, class Scale, class Out>
void dequantize(const WeightView<Layout, Scale>& v, Out* out) {
  const index_t G = v.groups();
  for (index_t m = 0; m < v.rows; ++m) {
    for (index_t grp = 0; grp < G; ++grp) {
      float a[kMaxBits];
      for (int i = 0; i < v.bits; ++i) a[i] = v.alpha_at(grp, i, m);
      const float b = v.beta_at(grp, m);
      for (index_t k = grp * v.group; k < (grp + 1) * v.group; ++k) {
        float w = b;
        for (int i = 0; i < v.bits; ++i) w += layout::get_bit(v.layout, v.planes, i, m, k) ? a[i] : -a[i];
        out[m * v.cols + k] = from_float<Out>(w);
      }
    }
  }
}

//! Relative Frobenius error ‖a − b‖ / ‖b‖ over n elements (b is the reference), in double.
template <class A, class B>
double relative_error(const A* a, const B* b, index_t n) {
  double num = 0, den = 0;
  for (index_t i = 0; i < n; ++i) {
    const double r = double(to_float(b[i]));
    const double d = double(to_float(a[i])) - r;
    num += d * d;
    den += r * r;
  }
  if (den == 0) return num == 0 ? 0.0 : INFINITY;
  return std::sqrt(num / den);
}

//! Naive float64 y = x·Ŵ_pᵀ (N×K activations → N×M outputs), the plainest possible oracle.
template <class Layout, class Scale, class In>
std::vector<double> gemm_naive_f64(const WeightView<Layout, Scale>& v, const In* x, index_t n) {
  std::vector<float> w(static_cast<std::size_t>(v.rows * v.cols));
  dequantize(v, w.data());
  std::vector<double> y(static_cast<std::size_t>(n * v.rows), 0.0);
  for (index_t r = 0; r < n; ++r)
    for (index_t m = 0; m < v.rows; ++m) {
      double acc = 0;
      for (index_t k = 0; k < v.cols; ++k) acc += double(w[m * v.cols + k]) * double(to_float(x[r * v.cols + k]));
      y[r * v.rows + m] = acc;
    }
  return y;
}

}  // namespace cpu
ANYBCQ_NAMESPACE_END
